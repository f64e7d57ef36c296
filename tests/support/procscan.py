"""Process and socket facts from /proc (no psutil): probe processes, process trees, listening sockets."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from modelcompat.probe.process import PROBE_SCRIPT


def _cmdline(pid: int) -> list[str]:
    try:
        return [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return []


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


def pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def probe_processes(cell_substring: str) -> list[int]:
    """Live (non-zombie) `modelcompat_probe.py` processes (fresh, forked or zygotes) whose `--cell` contains
    `cell_substring`."""
    found = []
    for pid in pids():
        args = _cmdline(pid)
        if any(a.endswith(f"/{PROBE_SCRIPT.parent.name}/{PROBE_SCRIPT.name}") for a in args) and "--cell" in args:
            cell = args[args.index("--cell") + 1] if args.index("--cell") + 1 < len(args) else ""
            if cell_substring in cell and _state(pid) not in ("Z", "X", "?"):
                found.append(pid)
    return found


def wait_gone(check, timeout: float = 30.0) -> list[int]:
    """Poll `check()` (a list of pids) until it is empty or `timeout` passes; return what is left.

    A bounded wait for processes to finish exiting, not a timing assertion: the test asserts emptiness.
    """
    deadline = time.monotonic() + timeout
    left = check()
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = check()
    return left


def children(pid: int) -> list[int]:
    """All descendants of `pid`."""
    parent: dict[int, int] = {}
    for p in pids():
        try:
            parent[p] = int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    out, frontier = [], [pid]
    while frontier:
        cur = frontier.pop()
        kids = [p for p, pp in parent.items() if pp == cur]
        out += kids
        frontier += kids
    return out


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    except OSError:
        pass
    return inodes


def _hex_addr(text: str) -> tuple[str, int]:
    host, port = text.split(":")
    if len(host) == 8:  # IPv4, little-endian
        ip = ".".join(str(int(host[i:i + 2], 16)) for i in (6, 4, 2, 0))
    else:  # IPv6: four little-endian 32-bit words
        words = [host[i:i + 8] for i in range(0, 32, 8)]
        raw = b"".join(bytes.fromhex(w)[::-1] for w in words)
        ip = ":".join(raw[i:i + 2].hex() for i in range(0, 16, 2))
        ip = {"0000:0000:0000:0000:0000:0000:0000:0000": "::",
              "0000:0000:0000:0000:0000:0000:0000:0001": "::1"}.get(ip, ip)
    return ip, int(port, 16)


def listening(pid: int, tree: bool = True) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state held by `pid` (and its descendants)."""
    inodes: set[int] = set()
    for p in [pid, *(children(pid) if tree else [])]:
        inodes |= _socket_inodes(p)
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[9]) in inodes:  # 0A = TCP_LISTEN
                found.append(_hex_addr(cols[1]))
    return found


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> None:
    """Kill `pid` and every descendant (children first found, then signalled)."""
    for p in [*children(pid), pid]:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass
