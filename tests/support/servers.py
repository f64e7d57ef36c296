"""Helpers for tests that start real server processes on 127.0.0.1: ports, waiting, stopping."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 2.0) -> T:
    """Poll `predicate` until it returns something truthy (returned); bounded, never a timing assertion."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def api_json(method: str, url: str, json: Any = None, timeout: float = 120) -> Any:
    """One call to a server's JSON API, as its clients make it: a busy server (429, 5xx, a dropped connection;
    SQLite's 'database is locked' is a 503) is asked again with backoff, bounded; any other error fails the test
    with the server's answer, not a KeyError on an error body."""
    import httpx

    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        try:
            resp = httpx.request(method, url, json=json, timeout=30)
        except httpx.TransportError as exc:
            answer = f"{type(exc).__name__}: {exc}"
        else:
            if resp.is_success:
                return resp.json()
            if resp.status_code != 429 and resp.status_code < 500:
                raise AssertionError(f"{method} {url} answered {resp.status_code}: {resp.text[:500]}")
            answer = f"{resp.status_code}: {resp.text[:200]}"
        if time.monotonic() + delay > deadline:
            raise AssertionError(f"{method} {url} still failing after {timeout:.0f} s: {answer}")
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def wait_healthy(url: str, proc: subprocess.Popen[Any], log: Path, what: str, timeout: float = 120) -> None:
    """Wait for `url` to answer 200; fail with the process log if it exits or never answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{what} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def stop_group(proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    """SIGTERM the process group (the process and its children), SIGKILL it if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
