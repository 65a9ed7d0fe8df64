"""A fault-capable HTTP proxy on a loopback port: the receiver as the notifier sees it (in
front of accounts' notify endpoint) or the payments API as reconciliation sees it.

Modes, switchable at any moment:

- ``forward``: pass the request on (method, path, body, the headers that matter) and answer
  what the upstream answered (502 if the upstream cannot be reached);
- ``refuse``: nothing listens on the port: connections are refused;
- ``slow``: hold each request ``slow_seconds`` (past the notifier's read timeout), then
  forward it anyway, as a receiver that is slow but still works would;
- ``error``: answer 500 without forwarding.

Independently of the mode, ``latency`` delays every forwarded request and ``slow_share`` of
webhook-ids (chosen by hash, so the same ones every time) are held ``slow_seconds`` and then
forwarded. Every request that arrives is recorded (``seen``), with its webhook-id: the
receiver-side count that proves whether a claimed attempt was ever sent twice.
"""

import hashlib
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

FORWARDED_HEADERS = (
    "Content-Type",
    "Authorization",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)
UPSTREAM_TIMEOUT = 30
JSON = "application/json"


@dataclass(frozen=True)
class Seen:
    """One request as the proxy saw it; times are ``time.time()``."""

    arrived: float
    answered: float
    method: str
    path: str
    webhook_id: str
    mode: str
    status: int


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


class FaultProxy:
    """See the module docstring. ``start()`` serves in background threads; ``close()`` stops."""

    def __init__(self, *, upstream: str | None = None, latency: float = 0.0):
        self.upstream = upstream
        self.latency = latency
        self.slow_seconds = 0.0
        self.slow_share = 0.0
        self.mode = "forward"
        with socket.socket() as probe:  # a port of our own, kept across refuse/serve
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._local = threading.local()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- Control ---------------------------------------------------------------------------

    def start(self) -> "FaultProxy":
        if self.mode != "refuse":
            self._listen()
        return self

    def set_mode(self, mode: str) -> None:
        """Switch to ``mode`` (forward, refuse, slow, error)."""
        if mode not in ("forward", "refuse", "slow", "error"):
            raise ValueError(mode)
        self.mode = mode
        if mode == "refuse":
            self._unlisten()
        elif self._server is None:
            self._listen()

    def close(self) -> None:
        self._unlisten()

    def _listen(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                proxy._handle(self)

            def do_POST(self):
                proxy._handle(self)

            def log_message(self, format, *args):
                pass

        deadline = time.monotonic() + 10
        while True:
            try:
                self._server = _Server(("127.0.0.1", self.port), Handler)
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

    # --- What it saw -----------------------------------------------------------------------

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def requests_per_webhook_id(self) -> Counter:
        return Counter(s.webhook_id for s in self.seen if s.webhook_id)

    def is_slow(self, webhook_id: str) -> bool:
        """Whether ``webhook_id`` is among the ``slow_share`` held back (stable by hash)."""
        if not self.slow_share or not webhook_id:
            return False
        digest = hashlib.sha256(webhook_id.encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 < self.slow_share

    # --- Serving ---------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        arrived = time.time()
        mode = self.mode
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        webhook_id = request.headers.get("webhook-id", "")
        if mode == "error":
            status, reply, content_type = 500, b'{"detail": "chaos: injected 500"}', JSON
        else:
            if mode == "slow" or self.is_slow(webhook_id):
                time.sleep(self.slow_seconds)
            elif self.latency:
                time.sleep(self.latency)
            status, reply, content_type = self._forward(request, body)
        with self._lock:
            self._seen.append(
                Seen(arrived, time.time(), request.command, request.path, webhook_id, mode, status)
            )
        try:
            request.send_response(status)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(reply)))
            request.send_header("Connection", "close")
            request.end_headers()
            request.wfile.write(reply)
        except OSError:  # the client gave up (read timeout): it counts the attempt as failed
            pass

    def _forward(self, request: BaseHTTPRequestHandler, body: bytes) -> tuple[int, bytes, str]:
        if self.upstream is None:
            return 503, b'{"detail": "chaos: no upstream"}', JSON
        headers = {
            name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers
        }
        headers["Connection"] = "close"
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False
        try:
            upstream = session.request(
                request.command,
                self.upstream + request.path,
                data=body or None,
                headers=headers,
                timeout=UPSTREAM_TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            detail = f'{{"detail": "chaos: upstream unreachable: {type(exc).__name__}"}}'
            return 502, detail.encode(), JSON
        return upstream.status_code, upstream.content, upstream.headers.get("Content-Type", JSON)
