"""One POST (notifications/http.py): what counts as acknowledged and what is recorded."""

import socket
import threading
import time

import pytest
import requests
import responses

from notifications import http

URL = "https://receiver.example/notify"


def post(url=URL, *, excerpt_bytes=1024):
    return http.post(
        url,
        body=b'{"id":"msg_1"}',
        headers={"Content-Type": "application/json", "webhook-id": "msg_1"},
        timeout=(3.05, 10),
        excerpt_bytes=excerpt_bytes,
    )


ACKNOWLEDGED = [(status, True, "") for status in (200, 201, 202, 299)]
FAILED = [(status, False, f"HTTP {status}") for status in (400, 404, 500, 503)]


@responses.activate
@pytest.mark.parametrize(("status", "ok", "error"), ACKNOWLEDGED + FAILED)
def test_status_decides_the_outcome_and_the_reply_is_kept(status, ok, error):
    """Any 2xx is an acknowledgement: ok, no error. 4xx and 5xx fail with the status named.
    Either way the status, the start of the reply (for staff) and the duration are kept."""
    responses.add(responses.POST, URL, status=status, body="upstream reply")

    result = post()

    assert result.ok is ok
    assert result.status_code == status
    assert result.error == error
    assert result.excerpt == "upstream reply"
    assert isinstance(result.duration_ms, int) and result.duration_ms >= 0


@responses.activate
def test_204_without_body_acknowledges():
    """204 No Content is the usual acknowledgement; an empty excerpt is fine."""
    responses.add(responses.POST, URL, status=204)

    result = post()

    assert (result.ok, result.status_code, result.excerpt, result.error) == (True, 204, "", "")


@responses.activate
def test_sends_body_headers_and_timeouts_as_given():
    """The body bytes and headers go out unchanged with the (connect, read) timeout."""
    responses.add(responses.POST, URL, status=204)

    post()

    request = responses.calls[0].request
    assert request.body == b'{"id":"msg_1"}'
    assert request.headers["webhook-id"] == "msg_1"
    assert request.req_kwargs["timeout"] == (3.05, 10)


@responses.activate
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_a_failure_and_is_not_followed(status):
    """A 3xx is not an acknowledgement and its Location is never requested."""
    elsewhere = "https://elsewhere.example/catch"
    responses.add(responses.POST, URL, status=status, headers={"Location": elsewhere})
    responses.add(responses.POST, elsewhere, status=200)
    responses.add(responses.GET, elsewhere, status=200)

    result = post()

    assert result.ok is False
    assert result.status_code == status
    assert result.error == f"HTTP {status}"
    assert [call.request.url for call in responses.calls] == [URL]


@responses.activate
def test_excerpt_is_capped():
    """Only the first ``excerpt_bytes`` of a large reply are read and kept."""
    responses.add(responses.POST, URL, status=200, body="x" * 5000)

    result = post(excerpt_bytes=1024)

    assert result.ok is True
    assert result.excerpt == "x" * 1024


@responses.activate
def test_excerpt_decodes_invalid_utf8_leniently():
    """A reply that is not UTF-8 is kept with replacement characters, not an exception."""
    responses.add(responses.POST, URL, status=200, body=b"ok\xff\xfe")

    assert post().excerpt == "ok\ufffd\ufffd"


@responses.activate
@pytest.mark.parametrize("exc", [requests.ConnectTimeout, requests.ReadTimeout])
def test_timeout_is_reported_not_raised(exc):
    """A connect or read timeout is a failed attempt described in ``error``."""
    responses.add(responses.POST, URL, body=exc("too slow"))

    result = post()

    assert result.ok is False
    assert result.status_code is None
    assert result.error == f"timeout: {exc.__name__}"


@responses.activate
def test_connection_error_is_reported_not_raised():
    """A refused connection is a failed attempt described in ``error``."""
    responses.add(responses.POST, URL, body=requests.ConnectionError("Connection refused"))

    result = post()

    assert result.ok is False
    assert result.status_code is None
    assert result.error == "connection error: Connection refused"


def test_real_refused_connection_is_reported_not_raised():
    """Against a closed local port (no mocking), the error is recorded and nothing raises."""
    result = post("http://127.0.0.1:9/notify")

    assert result.ok is False
    assert result.status_code is None
    assert result.error.startswith("connection error: ")


@responses.activate
def test_invalid_url_is_reported_not_raised():
    """A malformed target URL is a failed attempt too, not a crashed worker."""
    result = post("http://")

    assert result.ok is False
    assert result.status_code is None
    assert result.error.startswith("request error: ")


def one_shot_server(reply: bytes, *, then_wait: float = 0.0) -> str:
    """A local socket server that answers one request with raw ``reply`` bytes, waits, then
    closes: a receiver misbehaving below what ``responses`` can mock."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer():
        with server:
            conn, _ = server.accept()
            with conn:
                request = b""
                while not request.endswith(b"\r\n\r\n{}"):  # the whole request: headers, body
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    request += chunk
                conn.sendall(reply)
                time.sleep(then_wait)

    threading.Thread(target=answer, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/notify"


def post_with_short_read_timeout(url):
    return http.post(url, body=b"{}", headers={}, timeout=(1, 0.2), excerpt_bytes=1024)


def test_body_stalling_past_the_read_timeout_is_reported_not_raised():
    """Headers arrive, then the body stalls: a timeout in ``error``, never an exception
    (which would leave the attempt claimed until the sweeper gives up on it)."""
    url = one_shot_server(b"HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\npart", then_wait=1)

    result = post_with_short_read_timeout(url)

    assert result.status_code == 500
    assert result.ok is False
    assert result.error == "timeout: ReadTimeoutError"


def test_truncated_body_is_reported_not_raised():
    """A reply cut short keeps its status; the broken body is described in ``error``."""
    url = one_shot_server(b"HTTP/1.1 503 Busy\r\nContent-Length: 100\r\n\r\npart")

    result = post_with_short_read_timeout(url)

    assert result.status_code == 503
    assert result.ok is False
    assert result.error.startswith("request error: ProtocolError")


def test_one_session_per_thread():
    """The session is reused within a thread and not shared across threads."""
    seen = []
    thread = threading.Thread(target=lambda: seen.append(http.session()))
    thread.start()
    thread.join()

    assert http.session() is http.session()
    assert seen[0] is not http.session()
