"""One HTTP POST with explicit timeouts, no redirects and a bounded read of the reply.

The connection itself enforces the SSRF guard (``netguard``): it resolves the host, refuses
the whole request if any address is not allowed, and connects only to an address it checked.
No proxy from the environment is used, so the checked address is the one connected to.
"""

import os
import socket
import threading
import time
from dataclasses import dataclass

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

from .netguard import DestinationRefused, destination_addresses

_local = threading.local()


class _GuardedConnectionMixin:
    """Resolve and check the destination at connect time, then connect to a checked address.

    TLS still verifies the certificate against the host name (urllib3 uses ``host`` for SNI
    and matching; only the socket is opened to the literal address).
    """

    def _new_conn(self) -> socket.socket:
        host = self._dns_host
        try:
            addresses = destination_addresses(host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc
        last_error = None
        for address in addresses:
            self._dns_host = address
            try:
                return super()._new_conn()
            except NewConnectionError as exc:  # refused or unreachable: try the next one
                last_error = exc
            finally:
                self._dns_host = host
        raise last_error or NewConnectionError(self, f"{host} resolved to no address")


class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class _GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections apply the SSRF guard."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        # A new dict: the pool manager's default one is shared module state.
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPConnectionPool,
            "https": _GuardedHTTPSConnectionPool,
        }


def session() -> requests.Session:
    """The calling thread's ``requests.Session`` (one per worker process or thread), with the
    guarded adapter and no proxies or credentials taken from the environment.

    Keyed by pid too, so a session created before a fork is never shared with the child.
    """
    if getattr(_local, "pid", None) != os.getpid():
        guarded = requests.Session()
        guarded.trust_env = False
        # The reply is read only to a bounded excerpt; ask for it uncompressed.
        guarded.headers["Accept-Encoding"] = "identity"
        guarded.mount("http://", GuardedAdapter())
        guarded.mount("https://", GuardedAdapter())
        _local.session, _local.pid = guarded, os.getpid()
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
    network trouble: it is reported in ``PostResult.error``, as is a destination the SSRF
    guard refuses (``"refused destination: ..."``; nothing is sent then)."""
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
    except DestinationRefused as exc:
        error = f"refused destination: {exc}"
    except (requests.Timeout, urllib3.exceptions.TimeoutError) as exc:
        error = f"timeout: {type(exc).__name__}"
    except requests.ConnectionError as exc:
        error = f"connection error: {str(exc)[:200]}"
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        error = f"request error: {type(exc).__name__}: {str(exc)[:200]}"
    duration_ms = round((time.monotonic() - started) * 1000)
    return PostResult(status, excerpt, error[:255], duration_ms)
