"""HTTP and deadline helpers for the sources: a GET with retries, and a call bounded in time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from scraper.errors import SourceUnavailable

HTTP_TIMEOUT_S = 30.0
RETRY_DELAYS_S = (1.0, 3.0, 9.0)


class HttpClient(Protocol):
    def get(self, url: str, timeout_s: float) -> tuple[int, bytes]: ...


class RequestsClient:
    """The live client; tests replace it with recorded responses."""

    def get(self, url: str, timeout_s: float) -> tuple[int, bytes]:
        import requests

        try:
            response = requests.get(url, timeout=(min(timeout_s, 10.0), timeout_s))
        except requests.RequestException as exc:
            raise SourceUnavailable(f"{url}: {exc.__class__.__name__}: {exc}") from exc
        return response.status_code, response.content


def get_with_retries(http: HttpClient, url: str, *, timeout_s: float = HTTP_TIMEOUT_S,
                     delays_s: tuple[float, ...] = RETRY_DELAYS_S,
                     sleep: Callable[[float], None] = time.sleep) -> tuple[int, bytes]:
    """GET with back-off on network errors and 5xx/429; other statuses are returned as they are."""
    for attempt in range(len(delays_s) + 1):
        try:
            status, body = http.get(url, timeout_s)
            if status < 500 and status != 429:
                return status, body
            problem: str = f"HTTP {status}"
        except SourceUnavailable as exc:
            problem = str(exc)
        if attempt == len(delays_s):
            raise SourceUnavailable(f"{url} failed after {attempt + 1} attempts: {problem}")
        sleep(delays_s[attempt])
    raise AssertionError("unreachable")


def run_with_deadline(fn: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Run `fn` in a daemon thread and give up after `timeout_s`.

    yfinance's own `timeout=` does not bound a black-holed network; a daemon thread does
    not keep the process alive after we give up on it.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target, name=f"deadline:{what}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise SourceUnavailable(f"{what} did not answer within {timeout_s:g} s (network unreachable?)")
    if "error" in box:
        raise box["error"]
    return box.get("value")
