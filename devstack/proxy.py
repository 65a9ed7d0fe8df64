"""The fault proxy: a real HTTP server on a loopback port in front of a loopback upstream — the
receiver as the notifier sees it (``ACCOUNTS_PUBLIC_URL`` pointed at the proxy, so every
notify_url is the proxy's), or the payments API as reconciliation sees it. The product has no
switch that makes it misbehave; every receiver fault of the harness is injected here, and the
proxy counts what it injected itself.

Per notification (chosen by a hash of its ``webhook-id``, so the same ones on every run and
every retry, with no state shared with the stack):

- ``refuse_first``: that share is answered 503 on its first ``refusals`` requests, then
  forwarded (kind ``refused_first``);
- ``drop``: that share is answered 200 and not forwarded: acknowledged, and lost on the way,
  so only reconciliation can close its recharge (kind ``dropped``);
- ``slow_share``: that share is held ``slow_seconds``, then forwarded (kind ``slowed``).

Whole-port modes, switchable at any moment (``set_mode``), which win over the shares:

- ``forward``: pass the request on (after ``latency`` seconds) and answer what the upstream
  answered (502 when it cannot be reached);
- ``refuse``: nothing listens on the port: connections are refused (nothing to count);
- ``slow``: hold every request ``slow_seconds``, then forward it;
- ``error``: answer ``error_status`` (a ``Retry-After: <retry_after>`` header when set);
- ``hang``: read the request and answer nothing until the client gives up;
- ``drip``: forward, then send the answer one byte every ``drip_interval`` seconds.

A held connection (slow, hang, drip) ends after ``hold_limit`` seconds or when the proxy is
closed, so no thread outlives a run.
"""

import hashlib
import select
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.client import responses as reasons
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import requests

from .redis import free_port

MODES = ("forward", "refuse", "slow", "error", "hang", "drip")
FORWARDED_HEADERS = (
    "Content-Type",
    "Authorization",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
UPSTREAM_TIMEOUT = 30  # seconds
MAX_BODY = 2**20  # bytes of a request body read at most; a larger one is answered 413
JSON = "application/json"


def share(webhook_id: str, salt: str) -> float:
    """Where ``webhook_id`` falls in [0, 1) for the fault ``salt``: a stable hash, so a share
    ``s`` of that fault picks the ids below ``s``, the same ones every time."""
    digest = hashlib.sha256(f"{salt}:{webhook_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


@dataclass(frozen=True)
class Seen:
    """One request as the proxy answered it. Times are ``time.time()``; ``fault`` is the kind
    injected (``""``: forwarded untouched); ``status`` None means no answer was sent."""

    arrived: float
    answered: float
    method: str
    path: str
    webhook_id: str
    webhook_timestamp: str
    body_sha256: str
    fault: str
    status: int | None


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = JSON
    headers: tuple = ()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class FaultProxy:
    """See the module docstring. Keyword arguments set the attributes of the same names;
    ``start()`` (or ``with``) serves in background threads, ``close()`` stops.

    ``host``: the address it listens on, and besides loopback the one host it may forward
    to (the simulated cluster's: ``devstack.cluster``). Raises ValueError for any other
    upstream or an unknown mode."""

    def __init__(
        self,
        *,
        upstream: str | None = None,
        mode: str = "forward",
        host: str = "127.0.0.1",
        upstream_host: str = "127.0.0.1",
        **faults,
    ):
        self.host = host
        self.upstream_host = upstream_host
        self.upstream = upstream
        self.refuse_first = 0.0  # share of webhook-ids refused (503) on their first requests
        self.refusals = 1  # how many first requests of such a webhook-id are refused
        self.drop = 0.0  # share acknowledged (200) and not forwarded
        self.slow_share = 0.0  # share held slow_seconds before forwarding
        self.slow_seconds = 0.0
        self.latency = 0.0  # seconds before forwarding anything else
        self.error_status = 500
        self.retry_after: str | None = None
        self.drip_interval = 1.0  # seconds between the bytes of a dripped answer
        self.hold_limit = 60.0  # seconds a held connection lasts at most
        for name, value in faults.items():
            if not hasattr(self, name):
                raise TypeError(f"FaultProxy has no fault {name!r}")
            setattr(self, name, value)
        self.mode = "forward"
        self.port = free_port()  # kept across refuse and serve
        self._seen: list[Seen] = []
        self._arrivals: Counter = Counter()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._started = False
        self.set_mode(mode)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def upstream(self) -> str | None:
        return self._upstream

    @upstream.setter
    def upstream(self, url: str | None) -> None:
        allowed = (*LOOPBACK, self.upstream_host)
        if url is not None and urlsplit(url).hostname not in allowed:
            raise ValueError(
                f"the fault proxy forwards to loopback or {self.upstream_host} only, not {url!r}"
            )
        self._upstream = url

    # --- Control ---------------------------------------------------------------------------

    def start(self) -> "FaultProxy":
        """Listen (unless the mode is ``refuse``)."""
        self._closing.clear()
        self._started = True
        if self.mode != "refuse":
            self._listen()
        return self

    def set_mode(self, mode: str) -> None:
        """Switch the whole port to ``mode`` (see MODES)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
        self.mode = mode
        if mode == "refuse":
            self._unlisten()
        elif self._started and self._server is None:
            self._listen()

    def close(self) -> None:
        """Stop listening and end every held connection."""
        self._closing.set()
        self._started = False
        self._unlisten()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- What it saw and did ---------------------------------------------------------------

    @property
    def seen(self) -> list[Seen]:
        """Every request so far, in the order they were answered."""
        with self._lock:
            return list(self._seen)

    def requests_per_webhook_id(self) -> Counter:
        """``{webhook_id: requests}``, faulted or not."""
        return Counter(s.webhook_id for s in self.seen if s.webhook_id)

    def injected(self) -> Counter:
        """``{kind: requests}`` for every fault injected (kinds: see the module docstring)."""
        return Counter(s.fault for s in self.seen if s.fault)

    def injected_ids(self, kind: str) -> Counter:
        """``{webhook_id: requests}`` that got the fault ``kind``."""
        return Counter(s.webhook_id for s in self.seen if s.fault == kind)

    # --- Serving ---------------------------------------------------------------------------

    def _listen(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # seconds a client may take to send its request

            def do_GET(self):
                proxy._handle(self)

            def do_POST(self):
                proxy._handle(self)

            def log_message(self, format, *args):
                pass

        deadline = time.monotonic() + 10
        while True:
            try:
                self._server = _Server((self.host, self.port), Handler)
                break
            except OSError:  # the port is briefly still held after a close
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self._thread.join(timeout=5)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        arrived = time.time()
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if 0 < length <= MAX_BODY else b""
        webhook_id = request.headers.get("webhook-id", "")
        with self._lock:
            self._arrivals[webhook_id] += 1
            arrival = self._arrivals[webhook_id]
        fault = self._fault(webhook_id, arrival)
        answer = self._answer(fault, request, body, too_large=length > MAX_BODY)
        seen = Seen(
            arrived=arrived,
            answered=time.time(),
            method=request.command,
            path=request.path,
            webhook_id=webhook_id,
            webhook_timestamp=request.headers.get("webhook-timestamp", ""),
            body_sha256=hashlib.sha256(body).hexdigest(),
            fault=fault,
            status=answer.status if answer else None,
        )
        with self._lock:
            self._seen.append(seen)
        if answer is None:
            self._hold(request.connection)
        elif fault == "drip":
            self._drip(request.connection, answer)
        else:
            _send(request, answer)

    def _fault(self, webhook_id: str, arrival: int) -> str:
        """The fault for the ``arrival``-th request of ``webhook_id`` ("" for none)."""
        if self.mode != "forward":
            return self.mode
        if not webhook_id:
            return ""
        if arrival <= self.refusals and share(webhook_id, "refuse") < self.refuse_first:
            return "refused_first"
        if share(webhook_id, "drop") < self.drop:
            return "dropped"
        if share(webhook_id, "slow") < self.slow_share:
            return "slowed"
        return ""

    def _answer(self, fault: str, request, body: bytes, *, too_large: bool) -> Answer | None:
        """What to answer (None: nothing, the connection is held)."""
        if too_large:
            return Answer(413, b'{"detail": "fault proxy: body too large"}')
        if fault == "hang":
            return None
        if fault == "error":
            headers = (("Retry-After", self.retry_after),) if self.retry_after else ()
            return Answer(self.error_status, b'{"detail": "fault proxy: error"}', JSON, headers)
        if fault == "refused_first":
            return Answer(503, b'{"detail": "fault proxy: refused first delivery"}')
        if fault == "dropped":
            return Answer(200, b'{"detail": "fault proxy: acknowledged, dropped"}')
        delay = self.slow_seconds if fault in ("slow", "slowed") else self.latency
        if delay and self._closing.wait(delay):
            return Answer(503, b'{"detail": "fault proxy: closing"}')
        return self._forward(request, body)

    def _forward(self, request: BaseHTTPRequestHandler, body: bytes) -> Answer:
        if self.upstream is None:
            return Answer(502, b'{"detail": "fault proxy: no upstream"}')
        headers = {n: request.headers[n] for n in FORWARDED_HEADERS if n in request.headers}
        try:
            reply = requests.request(
                request.command,
                self.upstream + request.path,
                data=body or None,
                headers=headers,
                timeout=UPSTREAM_TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            detail = f'{{"detail": "fault proxy: upstream unreachable: {type(exc).__name__}"}}'
            return Answer(502, detail.encode())
        return Answer(reply.status_code, reply.content, reply.headers.get("Content-Type", JSON))

    def _hold(self, connection: socket.socket) -> None:
        """Answer nothing until the client closes, ``hold_limit`` passes or the proxy closes."""
        deadline = time.monotonic() + self.hold_limit
        while time.monotonic() < deadline and not self._closing.is_set():
            try:
                readable, _, _ = select.select([connection], [], [], 0.2)
                if readable and not connection.recv(4096):
                    return  # the client gave up
            except OSError:
                return

    def _drip(self, connection: socket.socket, answer: Answer) -> None:
        """Send ``answer`` one byte every ``drip_interval`` seconds, until it is all sent, the
        client goes, ``hold_limit`` passes or the proxy closes."""
        deadline = time.monotonic() + self.hold_limit
        for byte in _raw(answer):
            if time.monotonic() > deadline:
                return
            try:
                connection.sendall(bytes([byte]))
            except OSError:
                return  # the client gave up
            if self._closing.wait(self.drip_interval):
                return


def _send(request: BaseHTTPRequestHandler, answer: Answer) -> None:
    try:
        request.send_response(answer.status)
        request.send_header("Content-Type", answer.content_type)
        request.send_header("Content-Length", str(len(answer.body)))
        request.send_header("Connection", "close")
        for name, value in answer.headers:
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(answer.body)
    except OSError:
        pass  # the client gave up (read timeout) before the answer


def _raw(answer: Answer) -> bytes:
    """``answer`` as the bytes of an HTTP/1.0 response."""
    lines = [
        f"HTTP/1.0 {answer.status} {reasons.get(answer.status, '')}",
        f"Content-Type: {answer.content_type}",
        f"Content-Length: {len(answer.body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in answer.headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + answer.body
