"""One HTTP POST of a notification, asynchronously: a total deadline, no redirects, a bounded
read of the reply, and the SSRF guard applied to every address connected to.

Built on aiohttp (``make bench``: about a sixth of the CPU per request of ``requests`` in a
thread pool, which matters when a worker process holds hundreds of requests in flight). The
guard (``netguard``) runs in the connector's resolver, so a host name is resolved, every
address checked, and only checked addresses are connected to (no DNS rebinding); a literal
address never reaches the resolver and is checked before the request. No proxy from the
environment is used. TLS is verified against the host name.
"""

import asyncio
import logging
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from .netguard import DestinationRefused, destination_addresses, is_ip_literal

logger = logging.getLogger(__name__)
# Statuses whose Retry-After the schedule honours (RFC 9110 §10.2.3).
RETRY_AFTER_STATUSES = (429, 503)
# Sent with every POST besides the signed ones (``client_session``); recorded with each
# attempt as part of what was sent (``headers_sent``).
SESSION_HEADERS = {"User-Agent": "recharge-notify", "Accept-Encoding": "identity"}


@dataclass(frozen=True)
class PostResult:
    """What one POST produced: ``status_code`` (None when no response), the first bytes of
    the body decoded leniently, an error description, the duration in milliseconds, and the
    seconds a 429/503 asked us to wait (``Retry-After``; None when absent or unparsable)."""

    status_code: int | None
    excerpt: str
    error: str
    duration_ms: int
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        """Only a 2xx acknowledges; 3xx, 4xx, 5xx and no response are all failures."""
        return self.status_code is not None and 200 <= self.status_code < 300


class GuardedResolver(AbstractResolver):
    """Resolves a host for aiohttp's connector and refuses the whole host when any of its
    addresses may not be reached (``netguard.destination_addresses``).

    The system resolver blocks, so lookups run on threads of their own (a lookup cannot be
    cancelled: a name server that never answers holds its thread for the resolver's own
    timeout), at most ``LOOKUPS_PER_HOST`` at once per host: one endpoint with slow DNS
    holds a few of them, never the threads every other endpoint's lookups need.
    """

    LOOKUPS_PER_HOST = 2

    def __init__(self):
        self._per_host: dict[str, asyncio.Semaphore] = {}

    async def resolve(self, host, port=0, family=socket.AF_INET) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        lookups = self._per_host.setdefault(host, asyncio.Semaphore(self.LOOKUPS_PER_HOST))
        async with lookups:
            addresses = await loop.run_in_executor(
                _lookup_threads(), destination_addresses, host, port
            )
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        return None


_lookups: tuple[int, ThreadPoolExecutor] | None = None  # (pid, executor)
LOOKUP_THREADS = 32


def _lookup_threads() -> ThreadPoolExecutor:
    """This process's threads for name lookups, shared by every session (one per pid: a
    forked worker gets its own)."""
    global _lookups
    if _lookups is None or _lookups[0] != os.getpid():
        _lookups = (os.getpid(), ThreadPoolExecutor(LOOKUP_THREADS, "notify-dns"))
    return _lookups[1]


def client_session(*, connect_timeout: float) -> aiohttp.ClientSession:
    """A session for the running event loop: guarded resolver, no DNS cache (every new
    connection is resolved and checked again), no connection limit of its own (the caller
    bounds requests in flight), no proxies or cookies from anywhere."""
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(), use_dns_cache=False, limit=0, enable_cleanup_closed=True
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(sock_connect=connect_timeout),
        trace_configs=[_reuse_trace()],
        cookie_jar=aiohttp.DummyCookieJar(),
        trust_env=False,
        auto_decompress=False,
        skip_auto_headers=("User-Agent",),
        headers=SESSION_HEADERS,
    )


def headers_sent(headers: dict[str, str]) -> dict[str, str]:
    """The request headers a POST with ``headers`` carries, as the attempt log shows them:
    the session's and the signed ones (aiohttp adds only Host and Content-Length)."""
    return {**SESSION_HEADERS, **headers}


async def post(
    session: aiohttp.ClientSession,
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    deadline: float,
    excerpt_bytes: int,
) -> PostResult:
    """POST ``body`` to ``url`` and read at most ``excerpt_bytes`` of the reply, all within
    ``deadline`` seconds. Never raises for anything the network or the receiver does: a
    timeout is ``"timeout after N s"``, a destination the SSRF guard refuses is
    ``"refused destination: ..."`` (no connection attempted), and so on, in ``error``.

    A request that rode a kept-alive connection the receiver closed meanwhile (its idle
    timeout: gunicorn's is 2 s) is sent once more, within the same deadline and as the same
    attempt, when the connection failed before any status and within ``STALE_WITHIN``
    seconds of sending (a closed connection fails within a round trip; a receiver that held
    the request longer had it). RFC 9112 §9.3.1 allows retrying a non-idempotent method whose
    semantics are idempotent: a notification is, by its webhook-id (Standard Webhooks), and
    receivers dedupe on it; Go's net/http retries such a request on a reused connection when
    it carries an idempotency key, Deno's fetch any request there. When the second send
    fails too, its error is recorded with a note of the first."""
    started = time.monotonic()
    exchange, error, resent = _Exchange(), "", ""
    try:
        _refuse_literal(url)
        async with asyncio.timeout(deadline):
            try:
                await exchange.run(session, url, body, headers, excerpt_bytes)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                if not exchange.lost_kept_alive(exc):
                    raise
                logger.debug("%s: kept-alive connection lost (%r), sending again", url, exc)
                resent = f" (sent twice: the first send's kept-alive connection was lost, {exc!r})"
                exchange = _Exchange()
                await exchange.run(session, url, body, headers, excerpt_bytes)
        if not 200 <= exchange.status < 300:
            error = f"HTTP {exchange.status}"
    except DestinationRefused as exc:
        error = f"refused destination: {exc}"
    except TimeoutError:
        error = f"timeout after {deadline:g} s"
    except aiohttp.ClientConnectorError as exc:
        error = f"connection error: {exc.os_error or exc}"[:255]
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        error = f"request error: {type(exc).__name__}: {str(exc)[:200]}"
    duration_ms = round((time.monotonic() - started) * 1000)
    error = _text(error + resent if error else "")[:255]
    return PostResult(exchange.status, exchange.excerpt, error, duration_ms, exchange.retry_after)


# Seconds within which a reused connection's failure means the receiver had closed it before
# the request arrived (a round trip and the event loop's lag), not that it held the request.
STALE_WITHIN = 1.0


class _Exchange:
    """One request and what came back so far; also its trace context (``_reuse_trace``)."""

    def __init__(self):
        self.reused = False
        self.started = time.monotonic()
        self.status: int | None = None
        self.excerpt = ""
        self.retry_after: float | None = None

    async def run(self, session, url, body, headers, excerpt_bytes) -> None:
        """Send the request and read the reply into this object; raises aiohttp's errors."""
        async with session.post(
            URL(url, encoded=False),
            data=body,
            headers=headers,
            allow_redirects=False,
            trace_request_ctx=self,
        ) as response:
            self.status = response.status
            if self.status in RETRY_AFTER_STATUSES:
                self.retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            self.excerpt = _text(await _read_excerpt(response, excerpt_bytes))

    def lost_kept_alive(self, exc: Exception) -> bool:
        """Whether ``exc`` is a pooled connection the receiver had closed: lost before any
        status, within ``STALE_WITHIN`` of sending, on a connection reused from the pool (a
        new one failing is not retried)."""
        connecting = isinstance(exc, aiohttp.ClientConnectorError)
        quick = time.monotonic() - self.started < STALE_WITHIN
        return self.reused and self.status is None and quick and not connecting


def _reuse_trace() -> aiohttp.TraceConfig:
    """Marks a request's ``_Exchange`` (its ``trace_request_ctx``) when aiohttp hands it a
    pooled connection."""

    async def reused(session, context, params) -> None:
        if isinstance(context.trace_request_ctx, _Exchange):
            context.trace_request_ctx.reused = True

    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(reused)
    return trace


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from now: delay-seconds or an HTTP-date
    (RFC 9110 §10.2.3); None when absent or unparsable, 0 for a date in the past."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is True, float() refuses it
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


async def _read_excerpt(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most ``limit`` bytes of the body; the rest is never read (the connection is then
    closed rather than reused)."""
    chunks, size = [], 0
    while size < limit:
        chunk = await response.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _text(data: bytes | str) -> str:
    """Text fit for a database column: invalid UTF-8 replaced, NUL bytes too (PostgreSQL
    refuses them in text: one receiver answering ``ok\x00`` made every record fail)."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", errors="replace")
    return data.replace("\x00", "\ufffd")


def _refuse_literal(url: str) -> None:
    """aiohttp connects to a literal address without asking the resolver: check it here
    (any notation, ``2130706433`` included; raises ``DestinationRefused``). An IPv6 zone id
    (``[::1%25eth0]``) only ever names a local link: refused outright."""
    parsed = URL(url)
    host = (parsed.host or "").strip("[]")
    if "%" in host:
        raise DestinationRefused(f"{host} names a network interface (an IPv6 zone id)")
    if is_ip_literal(host):
        destination_addresses(host, parsed.port or 0)
