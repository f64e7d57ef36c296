"""Wait for a Prefect API to answer before serving on it: a server started at the same moment (systemd,
Kubernetes) takes seconds to listen, and `prefect.serve` fails at once on a refused connection.
"""
from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable

from modelcompat.errors import ModelcompatError

FIRST_DELAY_S = 0.25
MAX_DELAY_S = 5.0  # the backoff doubles up to this, so a server that comes up is noticed within 5 s


class ApiUnavailableError(ModelcompatError):
    """The Prefect API did not answer its health check in time (the message names the URL)."""


def health_url(api_url: str) -> str:
    return api_url.rstrip("/") + "/health"


def probe(api_url: str) -> str | None:
    """None when the API's health check answers 200, else why not (one short phrase)."""
    try:
        with urllib.request.urlopen(health_url(api_url), timeout=5) as resp:
            return None if resp.status == 200 else f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return str(getattr(reason, "strerror", None) or reason)


def wait_for_api(api_url: str, timeout_s: float, on_wait: Callable[[str], None] = lambda _: None) -> int:
    """Return once ``api_url`` answers (the number of failed attempts before it did).

    ``on_wait(reason)`` is called once, at the first failed attempt. Retries back off from
    FIRST_DELAY_S, doubling up to MAX_DELAY_S, and never sleep past the deadline.

    Raises:
        ApiUnavailableError: no answer within ``timeout_s`` seconds.
    """
    deadline = time.monotonic() + timeout_s
    delay, failures = FIRST_DELAY_S, 0
    while (reason := probe(api_url)) is not None:
        if failures == 0:
            on_wait(reason)
        failures += 1
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ApiUnavailableError(
                f"the Prefect API at {api_url} did not answer within {timeout_s:g} s ({reason}); "
                "start it (`modelcompat server`), fix PREFECT_API_URL, or wait longer with --api-timeout")
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, MAX_DELAY_S)
    return failures
