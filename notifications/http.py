"""One HTTP POST with explicit timeouts, no redirects and a bounded read of the reply."""

import os
import threading
import time
from dataclasses import dataclass

import requests
import urllib3

_local = threading.local()


def session() -> requests.Session:
    """The calling thread's ``requests.Session`` (one per worker process or thread).

    Keyed by pid too, so a session created before a fork is never shared with the child.
    """
    if getattr(_local, "pid", None) != os.getpid():
        _local.session, _local.pid = requests.Session(), os.getpid()
    return _local.session


@dataclass(frozen=True)
class PostResult:
    """What one POST produced: ``status_code`` (None when no response), the first bytes of
    the body decoded leniently, an error description, and the duration in milliseconds."""

    status_code: int | None
    excerpt: str
    error: str
    duration_ms: int

    @property
    def ok(self) -> bool:
        """Only a 2xx acknowledges; 3xx, 4xx, 5xx and no response are all failures."""
        return self.status_code is not None and 200 <= self.status_code < 300


def post(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    timeout: tuple[float, float],
    excerpt_bytes: int,
) -> PostResult:
    """POST ``body`` to ``url``; ``timeout`` is (connect, read) seconds. Never raises for
    network trouble: it is reported in ``PostResult.error``."""
    started = time.monotonic()
    status, excerpt, error = None, "", ""
    try:
        response = session().post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True
        )
        with response:
            status = response.status_code
            raw = response.raw.read(excerpt_bytes, decode_content=True) or b""
            excerpt = raw.decode("utf-8", errors="replace")
            if not 200 <= status < 300:
                error = f"HTTP {status}"
    # Reading ``response.raw`` directly raises urllib3's own exceptions, which requests does
    # not wrap: a body that stalls past the read timeout, is cut short or fails to decode.
    except (requests.Timeout, urllib3.exceptions.TimeoutError) as exc:
        error = f"timeout: {type(exc).__name__}"
    except requests.ConnectionError as exc:
        error = f"connection error: {str(exc)[:200]}"
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        error = f"request error: {type(exc).__name__}: {str(exc)[:200]}"
    duration_ms = round((time.monotonic() - started) * 1000)
    return PostResult(status, excerpt, error[:255], duration_ms)
