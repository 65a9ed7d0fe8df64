"""A real HTTP receiver on a loopback port for unit tests of delivery: it records every
request and answers as told, including the ways real receivers misbehave (slow, hanging,
dripping, a huge body, closing without an answer).

``Reply`` says how to answer one request; ``Receiver.replies`` is consumed one per request,
then ``Receiver.default`` answers. Every wait is bounded (``MAX_HOLD`` seconds), so no test
thread outlives its test by long.
"""

import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_HOLD = 30.0  # seconds any reply may hold its connection, at most


@dataclass(frozen=True)
class Reply:
    """``status`` with ``body`` and ``headers`` after ``delay`` seconds. ``hang``: never
    answer (hold the connection until the client leaves or MAX_HOLD). ``drip``: seconds
    between single bytes of the status line, headers and body. ``close``: close the
    connection without answering. ``length`` declares another Content-Length than the
    body's (larger: the body is cut short and the connection closed)."""

    status: int = 204
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    hang: bool = False
    drip: float = 0.0
    close: bool = False
    length: int | None = None  # the Content-Length to declare (default: the body's)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict
    body: bytes


class Receiver:
    """Use as a context manager; ``url`` is ``http://127.0.0.1:<port>/notify``.
    ``keep_alive``: HTTP/1.1 persistent connections (a ``close`` reply then closes one the
    client is reusing, as a server's idle timeout does); else one request per connection."""

    def __init__(self, default: Reply | None = None, *, keep_alive: bool = False):
        self.default = default or Reply()
        self.replies: deque[Reply] = deque()
        self.received: list[Received] = []
        self.connections = 0  # accepted so far
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def setup(self):
                super().setup()
                with receiver._lock:
                    receiver.connections += 1

            def do_POST(self):  # noqa: N802 - http.server's naming
                receiver._handle(self)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/notify"

    def __enter__(self) -> "Receiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        with self._lock:
            self.received.append(Received(request.path, dict(request.headers), body))
            reply = self.replies.popleft() if self.replies else self.default
        if reply.delay:
            time.sleep(min(reply.delay, MAX_HOLD))
        if reply.close:
            request.close_connection = True
            return
        if reply.hang:
            _hold(request.connection)
            request.close_connection = True
            return
        length = len(reply.body) if reply.length is None else reply.length
        head = f"HTTP/1.1 {reply.status} X\r\nContent-Length: {length}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in reply.headers.items())
        _write(request, head.encode() + b"\r\n" + reply.body, reply.drip)
        if length != len(reply.body):
            request.close_connection = True


def _hold(connection: socket.socket) -> None:
    """Keep the connection open, answering nothing, until the client closes it."""
    connection.settimeout(0.2)
    deadline = time.monotonic() + MAX_HOLD
    while time.monotonic() < deadline:
        try:
            if connection.recv(1024) == b"":
                return
        except TimeoutError:
            continue
        except OSError:
            return


def _write(request: BaseHTTPRequestHandler, data: bytes, drip: float) -> None:
    try:
        if not drip:
            request.wfile.write(data)
            return
        deadline = time.monotonic() + MAX_HOLD
        for byte in data:
            if time.monotonic() > deadline:
                return
            request.wfile.write(bytes([byte]))
            request.wfile.flush()
            time.sleep(drip)
    except OSError:  # the client gave up: that is what the test is about
        request.close_connection = True
