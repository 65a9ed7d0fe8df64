"""The harness's fault proxy (devstack/proxy.py) on its own: each receiver behaviour it injects,
the webhook-ids it picks, what it counts, and that every held connection ends."""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from devstack.proxy import FaultProxy, share


class Upstream:
    """A loopback HTTP server answering 200 ``ok`` to every POST; ``hits`` counts them."""

    def __init__(self):
        self.hits = 0
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def upstream():
    server = Upstream()
    yield server
    server.server.shutdown()
    server.server.server_close()


def post(proxy: FaultProxy, webhook_id: str = "msg_1", timeout=5) -> requests.Response:
    return requests.post(
        f"{proxy.url}/notify/", data=b"{}", headers={"webhook-id": webhook_id}, timeout=timeout
    )


def raw_post(proxy: FaultProxy) -> socket.socket:
    """A connection to the proxy that has sent one empty POST and reads the answer itself."""
    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    client.sendall(b"POST /notify/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    return client


def test_refuses_the_first_requests_of_a_chosen_id_then_forwards(upstream):
    """refuse_first 1.0 with refusals 2: 503, 503, then the upstream's answer; the proxy
    counts the two refusals and three requests for that webhook-id."""
    with FaultProxy(upstream=upstream.url, refuse_first=1.0, refusals=2) as proxy:
        statuses = [post(proxy).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]
    assert upstream.hits == 1
    assert proxy.injected() == {"refused_first": 2}
    assert proxy.requests_per_webhook_id() == {"msg_1": 3}


def test_drops_a_chosen_id_acknowledged_and_never_forwarded(upstream):
    with FaultProxy(upstream=upstream.url, drop=1.0) as proxy:
        response = post(proxy)

    assert response.status_code == 200
    assert upstream.hits == 0
    assert proxy.injected_ids("dropped") == {"msg_1": 1}


def test_a_share_picks_the_same_ids_every_time(upstream):
    """A share is a pure function of the webhook-id: two proxies refuse the same ids, and
    about the share of them."""
    ids = [f"msg_{n:04d}" for n in range(200)]
    refused = []
    for _ in range(2):
        with FaultProxy(upstream=upstream.url, refuse_first=0.3) as proxy:
            refused.append({i for i in ids if post(proxy, i).status_code == 503})

    assert refused[0] == refused[1] == {i for i in ids if share(i, "refuse") < 0.3}
    assert 40 <= len(refused[0]) <= 80


def test_error_mode_answers_the_status_with_retry_after():
    with FaultProxy(mode="error", error_status=429, retry_after="7") as proxy:
        response = post(proxy)

    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")
    assert proxy.injected() == {"error": 1}


def test_refuse_mode_closes_the_port_and_forward_reopens_it(upstream):
    with FaultProxy(upstream=upstream.url) as proxy:
        proxy.set_mode("refuse")
        with pytest.raises(requests.ConnectionError):
            post(proxy)
        proxy.set_mode("forward")
        assert post(proxy).status_code == 200


def test_hang_answers_nothing_and_its_thread_ends_when_the_client_gives_up():
    threads = threading.active_count()
    with FaultProxy(mode="hang", hold_limit=30) as proxy:
        with pytest.raises(requests.ReadTimeout):
            post(proxy, timeout=(1, 0.5))
        deadline = time.monotonic() + 5
        while threading.active_count() > threads + 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # the held connection's thread notices the client left

        assert threading.active_count() == threads + 1  # serve_forever only
        assert [(s.fault, s.status) for s in proxy.seen] == [("hang", None)]


def test_hang_is_bounded_by_hold_limit():
    """A client that never leaves is cut off after ``hold_limit`` seconds, unanswered."""
    with FaultProxy(mode="hang", hold_limit=0.5) as proxy, raw_post(proxy) as client:
        began = time.monotonic()
        assert client.recv(100) == b""  # closed, nothing sent
        assert 0.4 <= time.monotonic() - began < 3


def test_drip_sends_the_answer_one_byte_at_a_time(upstream):
    chunks = []
    with (
        FaultProxy(upstream=upstream.url, mode="drip", drip_interval=0.01) as proxy,
        raw_post(proxy) as client,
    ):
        for _ in range(1000):  # bounded: the answer is under 200 bytes
            chunk = client.recv(100)
            if not chunk:
                break
            chunks.append(chunk)

    reply = b"".join(chunks)
    assert reply.startswith(b"HTTP/1.0 200 OK\r\n") and reply.endswith(b"\r\n\r\nok")
    assert len(chunks) > len(reply) / 2  # bytes came (mostly) one per read
    assert proxy.injected() == {"drip": 1}


def test_forwards_to_loopback_only():
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy(upstream="http://example.com")


def test_forwards_to_its_cluster_host_besides_loopback():
    """A proxy on a simulated cluster (devstack.cluster) forwards to the one host it is
    given besides loopback, and to no other address."""
    proxy = FaultProxy(upstream_host="10.213.7.4", upstream="http://10.213.7.4:8000")
    assert proxy.upstream == "http://10.213.7.4:8000"
    with pytest.raises(ValueError, match="loopback or 10.213.7.4"):
        proxy.upstream = "http://10.213.7.5:8000"
