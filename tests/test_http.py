"""One POST (notifications/http.py) against real loopback receivers: what counts as
acknowledged, what is recorded, and the total deadline whatever the receiver does."""

import asyncio
import time

import pytest

from notifications import http
from tests.receiver import Receiver, Reply

BODY = b'{"id":"msg_1"}'
HEADERS = {"Content-Type": "application/json", "webhook-id": "msg_1"}


def post(url, *, deadline=5.0, excerpt_bytes=1024) -> http.PostResult:
    [result] = posts(url, 1, deadline=deadline, excerpt_bytes=excerpt_bytes)
    return result


def posts(url, count, *, deadline=5.0, excerpt_bytes=1024) -> list[http.PostResult]:
    """``count`` POSTs one after another on one session (its pool keeps connections alive)."""

    async def send():
        async with http.client_session(connect_timeout=1) as session:
            return [
                await http.post(
                    session,
                    url,
                    body=BODY,
                    headers=HEADERS,
                    deadline=deadline,
                    excerpt_bytes=excerpt_bytes,
                )
                for _ in range(count)
            ]

    return asyncio.run(send())


def answered(reply: Reply, **kwargs) -> tuple[http.PostResult, Receiver]:
    with Receiver(reply) as receiver:
        return post(receiver.url, **kwargs), receiver


ACKNOWLEDGED = [(status, True, "") for status in (200, 201, 202, 299)]
FAILED = [(status, False, f"HTTP {status}") for status in (400, 404, 500, 503)]


@pytest.mark.parametrize(("status", "ok", "error"), ACKNOWLEDGED + FAILED)
def test_status_decides_the_outcome_and_the_reply_is_kept(status, ok, error):
    """Any 2xx is an acknowledgement: ok, no error. 4xx and 5xx fail with the status named.
    Either way the status, the start of the reply (for staff) and the duration are kept."""
    result, _ = answered(Reply(status=status, body=b"upstream reply"))

    assert (result.ok, result.status_code, result.error) == (ok, status, error)
    assert result.excerpt == "upstream reply"
    assert isinstance(result.duration_ms, int) and result.duration_ms >= 0


def test_sends_the_body_and_headers_as_given():
    """The body bytes and headers arrive unchanged; no cookies, no proxy, identity encoding."""
    result, receiver = answered(Reply(status=204))

    [request] = receiver.received
    assert result.ok and request.body == BODY
    assert request.headers["webhook-id"] == "msg_1"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept-Encoding"] == "identity"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_a_failure_and_is_not_followed(status):
    """A redirect is a failed attempt; its Location is never requested."""
    with Receiver() as target:
        result, receiver = answered(Reply(status=status, headers={"Location": target.url}))

    assert (result.ok, result.status_code, result.error) == (False, status, f"HTTP {status}")
    assert len(receiver.received) == 1 and target.received == []


def test_excerpt_is_capped_and_the_rest_never_read():
    """A 10 MB reply: only ``excerpt_bytes`` are kept (and the deadline is not spent)."""
    result, _ = answered(Reply(status=200, body=b"x" * 10_000_000), excerpt_bytes=64)

    assert (result.status_code, result.excerpt) == (200, "x" * 64)
    assert result.duration_ms < 5000


def test_excerpt_decodes_invalid_utf8_leniently():
    result, _ = answered(Reply(status=500, body=b"\xff\xfeok"))

    assert result.excerpt == "\ufffd\ufffdok"


@pytest.mark.parametrize(
    "reply",
    [Reply(hang=True), Reply(drip=0.3, body=b"y" * 50), Reply(status=200, drip=0.4)],
    ids=["hangs", "drips a body", "drips its headers"],
)
def test_total_deadline_holds_whatever_the_receiver_does(reply):
    """A receiver that never answers, or answers one byte every few tenths of a second, costs
    the deadline and no more: the attempt ends as a timeout, never an exception."""
    started = time.monotonic()
    result, _ = answered(reply, deadline=1.0)

    assert result.ok is False
    assert result.error == "timeout after 1 s"
    assert 0.9 <= time.monotonic() - started < 3


def test_connection_closed_without_an_answer_is_reported_not_raised():
    result, _ = answered(Reply(close=True))

    assert (result.ok, result.status_code) == (False, None)
    assert result.error.startswith("request error: ServerDisconnectedError")


def test_truncated_body_keeps_its_status():
    """A reply cut short (Content-Length larger than what is sent before closing): a failed
    attempt that keeps the status and names the broken body."""
    result, _ = answered(Reply(status=503, body=b"part", length=100))

    assert (result.status_code, result.ok) == (503, False)
    assert result.error.startswith("request error: ClientPayloadError")


def test_refused_connection_is_reported_not_raised():
    with Receiver() as receiver:
        url = receiver.url
    result = post(url)  # the port is closed now

    assert (result.ok, result.status_code) == (False, None)
    assert result.error.startswith("connection error: ")


def test_invalid_url_is_reported_not_raised():
    result = post("http://")

    assert (result.ok, result.status_code) == (False, None)
    assert result.error.startswith("request error: ")


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [({"Retry-After": "120"}, 120.0), ({"Retry-After": "soon"}, None), ({}, None)],
)
def test_retry_after_of_a_503_is_kept(headers, seconds):
    result, _ = answered(Reply(status=503, headers=headers))

    assert result.retry_after == seconds


def test_retry_after_of_other_statuses_is_ignored():
    result, _ = answered(Reply(status=500, headers={"Retry-After": "120"}))

    assert result.retry_after is None


def test_retry_after_as_an_http_date():
    """RFC 9110: delay-seconds or an HTTP-date; a date in the past is 0."""
    now = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT

    assert http.retry_after_seconds("Tue, 14 Nov 2023 22:15:20 GMT", now=now) == 120.0
    assert http.retry_after_seconds("Tue, 14 Nov 2023 22:00:00 GMT", now=now) == 0.0
    assert http.retry_after_seconds("14/11/2023", now=now) is None


@pytest.mark.parametrize("value", ["\u00b2", "1\u2460"])
def test_retry_after_of_unicode_digits_is_unparsable(value):
    """``"²".isdigit()`` is True yet ``float("²")`` raises: such a value is no delay."""
    assert http.retry_after_seconds(value) is None


def test_a_kept_alive_connection_the_receiver_closed_is_sent_again_once():
    """The receiver closes the connection the second POST reuses without answering (its idle
    timeout firing as the request arrives): the POST is sent again, on a new connection, and
    acknowledged; one result, as one attempt."""
    with Receiver(keep_alive=True) as receiver:
        receiver.replies.extend([Reply(status=204), Reply(close=True)])
        first, second = posts(receiver.url, 2)

    assert first.ok and second.ok and second.error == ""
    assert [request.body for request in receiver.received] == [BODY] * 3
    assert receiver.connections == 2


def test_a_new_connection_closed_without_an_answer_is_not_sent_again():
    """Only a reused connection may have gone stale: a new one closed without an answer is
    the receiver's failure, recorded, and sent once."""
    with Receiver(keep_alive=True) as receiver:
        receiver.replies.append(Reply(close=True))
        result = post(receiver.url)

    assert not result.ok and result.status_code is None
    assert result.error.startswith("request error: ServerDisconnectedError")
    assert len(receiver.received) == 1


def test_a_reused_connection_lost_after_the_status_is_not_sent_again():
    """Once a status came back the receiver has handled the request: a reply cut short on a
    reused connection keeps its status and is not sent again."""
    with Receiver(keep_alive=True) as receiver:
        receiver.replies.extend([Reply(status=204), Reply(status=500, body=b"ab", length=10)])
        first, second = posts(receiver.url, 2)

    assert first.ok and second.status_code == 500
    assert len(receiver.received) == 2


def test_the_second_send_is_the_last():
    """The second send failing too (the receiver closes every connection at its first request)
    is recorded as the attempt's failure: never a third send."""
    with Receiver(keep_alive=True) as receiver:
        receiver.replies.extend([Reply(status=204), Reply(close=True), Reply(close=True)])
        first, second = posts(receiver.url, 2)

    assert first.ok and not second.ok and second.status_code is None
    assert len(receiver.received) == 3
    assert "(sent twice: the first send's kept-alive connection was lost" in second.error


def test_a_reused_connection_that_held_the_request_is_not_sent_again():
    """A receiver that held the request (1.5 s, past ``STALE_WITHIN``) before closing the
    reused connection had it: its failure is the attempt's, recorded, sent once."""
    with Receiver(keep_alive=True) as receiver:
        receiver.replies.extend([Reply(status=204), Reply(delay=1.5, close=True)])
        first, second = posts(receiver.url, 2)

    assert first.ok and not second.ok and second.status_code is None
    assert second.error.startswith("request error: ServerDisconnectedError")
    assert "sent twice" not in second.error
    assert len(receiver.received) == 2
