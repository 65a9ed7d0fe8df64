"""Hostile input at the receiver, ``POST /api/accounts/notify/``.

Every case asserts the status code, the error message, and that nothing in the database
changed (recharges, balances, ledger, receipts, orders, notifications). Bodies are signed
with ``tests.conftest.sign`` exactly as payments signs them, then forged, malformed,
tampered, truncated, replayed or oversized.
"""

import base64
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Account, InboundNotification, LedgerEntry, Recharge
from tests.conftest import WEBHOOK_SECRET, sign
from tests.helpers import WEBHOOK_ID, notification_payload, run_concurrently
from tests.security.conftest import db_state, error_text

NOTIFY_URL = reverse("accounts:notify")
UNTRUSTED_SECRET = "whsec_YW5vdGhlci1zZWNyZXQtbm90LXRydXN0ZWQtYnktYWNjb3VudHM="
SIG = "v1," + base64.b64encode(b"\x00" * 32).decode()  # well-formed, matches nothing

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@dataclass
class Request:
    body: bytes | str
    headers: dict
    content_type: str = "application/json"
    extra: dict = field(default_factory=dict)


def post(client, request: Request):
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-type"}
    return client.generic(
        "POST",
        NOTIFY_URL,
        request.body,
        content_type=request.content_type,
        headers=headers,
        **request.extra,
    )


def signed(doc, **sign_kwargs) -> Request:
    body = json.dumps(doc)
    return Request(body, sign(body, webhook_id=WEBHOOK_ID, **sign_kwargs))


def signed_raw(body: str, **sign_kwargs) -> Request:
    return Request(body, sign(body, webhook_id=WEBHOOK_ID, **sign_kwargs))


def header(name, value):
    def build(doc):
        request = signed(doc)
        request.headers = {**request.headers, name: value}
        return request

    return build


def without(*names):
    def build(doc):
        request = signed(doc)
        request.headers = {k: v for k, v in request.headers.items() if k not in names}
        return request

    return build


def tampered(**changes):
    """Signed, then a field of ``data`` changed in the bytes sent: the signature breaks."""

    def build(doc):
        request = signed(doc)
        request.body = json.dumps({**doc, "data": {**doc["data"], **changes}})
        return request

    return build


def off_contract(**changes):
    """Correctly signed, but a field of ``data`` is not what the contract allows."""
    return lambda doc: signed({**doc, "data": {**doc["data"], **changes}})


def signed_other_id(doc):
    body = json.dumps(doc)
    return Request(body, {**sign(body, webhook_id="msg_other"), "webhook-id": WEBHOOK_ID})


def signed_other_body(doc):
    other = json.dumps({**doc, "type": "recharge.failed"})
    return Request(json.dumps(doc), sign(other, webhook_id=WEBHOOK_ID))


def truncated(doc):
    request = signed(doc)
    request.body = request.body[: len(request.body) // 2]
    return request


def truncated_and_resigned(doc):
    body = json.dumps(doc)
    return signed_raw(body[: len(body) // 2])


def empty_body(doc):
    request = signed_raw("")
    request.extra = {"CONTENT_TYPE": "application/json"}  # the test client omits it otherwise
    return request


def content_type(value):
    def build(doc):
        request = signed(doc)
        request.content_type = value
        return request

    return build


def oversized(doc, settings_limit=16 * 1024):
    body = json.dumps({**doc, "padding": "x" * settings_limit})
    return signed_raw(body)


def declared_length(value):
    def build(doc):
        request = signed(doc)
        request.extra = {"CONTENT_LENGTH": value}
        return request

    return build


STALE = datetime.now(UTC) - timedelta(minutes=10)
MISMATCH = "signature verification failed: No matching signature found"

# name: (build(doc) -> Request, expected status, expected text in the response)
REFUSED = {
    # forged
    "forged: unknown secret": (
        lambda doc: signed(doc, secret=UNTRUSTED_SECRET),
        400,
        MISMATCH,
    ),
    "forged: signature of another body": (signed_other_body, 400, MISMATCH),
    "forged: signature under another webhook-id": (signed_other_id, 400, MISMATCH),
    "forged: well-formed signature matching nothing": (
        header("webhook-signature", SIG),
        400,
        MISMATCH,
    ),
    "unsigned: no webhook headers": (
        lambda doc: Request(json.dumps(doc), {}),
        400,
        "missing header(s): webhook-id, webhook-timestamp, webhook-signature",
    ),
    "unsigned: no webhook-id": (without("webhook-id"), 400, "missing header(s): webhook-id"),
    "unsigned: no webhook-timestamp": (
        without("webhook-timestamp"),
        400,
        "missing header(s): webhook-timestamp",
    ),
    "unsigned: no webhook-signature": (
        without("webhook-signature"),
        400,
        "missing header(s): webhook-signature",
    ),
    "unsigned: empty webhook-signature": (
        header("webhook-signature", ""),
        400,
        "missing header(s): webhook-signature",
    ),
    # malformed signature header
    "signature: no comma": (header("webhook-signature", "v1"), 400, "expected 'v1,<base64>'"),
    "signature: two commas": (
        header("webhook-signature", "v1,abc,def"),
        400,
        "expected 'v1,<base64>'",
    ),
    "signature: bad base64 characters": (
        header("webhook-signature", "v1,!!!!not-base64!!!!"),
        400,
        "bad base64",
    ),
    "signature: bad base64 padding": (header("webhook-signature", "v1,abc"), 400, "bad base64"),
    "signature: unknown version only": (
        header("webhook-signature", "v2," + SIG[3:]),
        400,
        "no v1 signature in webhook-signature",
    ),
    "signature: garbage version": (
        header("webhook-signature", "version1," + SIG[3:]),
        400,
        "malformed webhook-signature version",
    ),
    "signature: wrong length (16 bytes)": (
        header("webhook-signature", "v1," + base64.b64encode(b"\x01" * 16).decode()),
        400,
        "a v1 signature is 32 bytes",
    ),
    "signature: wrong length (64 bytes)": (
        header("webhook-signature", "v1," + base64.b64encode(b"\x01" * 64).decode()),
        400,
        "a v1 signature is 32 bytes",
    ),
    "signature: too many signatures": (
        header("webhook-signature", " ".join([SIG] * 9)),
        400,
        "more than 8 signatures",
    ),
    "signature: header too long": (
        header("webhook-signature", "v1," + "A" * 2000),
        400,
        "longer than 1024",
    ),
    "signature: empty entry between spaces": (
        header("webhook-signature", f"{SIG}  {SIG}"),
        400,
        "expected 'v1,<base64>'",
    ),
    # timestamp
    "timestamp: stale (10 minutes old)": (
        lambda doc: signed(doc, timestamp=STALE),
        400,
        "webhook-timestamp too old",
    ),
    "timestamp: 10 minutes in the future": (
        lambda doc: signed(doc, timestamp=datetime.now(UTC) + timedelta(minutes=10)),
        400,
        "too far in the future",
    ),
    "timestamp: not a number": (
        header("webhook-timestamp", "yesterday"),
        400,
        "malformed webhook-timestamp",
    ),
    "timestamp: fractional": (
        header("webhook-timestamp", "1700000000.5"),
        400,
        "malformed webhook-timestamp",
    ),
    "timestamp: negative": (header("webhook-timestamp", "-1"), 400, "malformed webhook-timestamp"),
    "timestamp: 20 digits": (
        header("webhook-timestamp", "9" * 20),
        400,
        "malformed webhook-timestamp",
    ),
    # webhook-id
    "webhook-id: too long": (header("webhook-id", "m" * 65), 400, "malformed webhook-id"),
    "webhook-id: with a space": (header("webhook-id", "msg 1"), 400, "malformed webhook-id"),
    "webhook-id: differs from the body's id": (
        lambda doc: signed({**doc, "id": "msg_another"}),
        400,
        "payload id does not match the webhook-id header",
    ),
    # tampered after signing
    "tampered: amount": (tampered(amount=100000), 400, MISMATCH),
    "tampered: account": (tampered(account_no="AC999999999999"), 400, MISMATCH),
    "tampered: currency": (tampered(currency="USD"), 400, MISMATCH),
    "tampered: status": (tampered(status=200), 400, MISMATCH),
    "tampered: tx_no": (tampered(tx_no="TX-SOMEONE-ELSE"), 400, MISMATCH),
    # truncated
    "truncated: body cut after signing": (truncated, 400, MISMATCH),
    "truncated: cut body, signed as cut": (truncated_and_resigned, 400, "body is not valid JSON"),
    # not JSON, not an object, not UTF-8
    "body: not JSON": (lambda doc: signed_raw("this is not json"), 400, "body is not valid JSON"),
    "body: empty": (empty_body, 400, "body is not valid JSON"),
    "body: a JSON list": (lambda doc: signed_raw("[1, 2]"), 400, "payload must be a JSON object"),
    "body: a JSON string": (lambda doc: signed_raw('"x"'), 400, "payload must be a JSON object"),
    "body: nested 8000 deep": (
        lambda doc: signed_raw("[" * 8000 + "]" * 8000),
        400,
        "body is not valid JSON",
    ),
    "body: not UTF-8": (
        lambda doc: Request(b"\xff\xfe{}", sign("{}", webhook_id=WEBHOOK_ID)),
        400,
        "body is not UTF-8",
    ),
    # content type and size
    "content type: text/plain": (content_type("text/plain"), 415, "must be application/json"),
    "content type: form": (
        content_type("application/x-www-form-urlencoded"),
        415,
        "must be application/json",
    ),
    "content type: multipart": (
        content_type("multipart/form-data; boundary=xyz"),
        415,
        "must be application/json",
    ),
    "size: body over API_MAX_BODY_BYTES": (
        oversized,
        413,
        "Request body too large (limit 16384 bytes)",
    ),
    "size: declared Content-Length of 1 GB": (
        declared_length(str(10**9)),
        413,
        "Request body too large",
    ),
    "size: Content-Length not a number": (
        declared_length("12abc"),
        400,
        "Invalid Content-Length header",
    ),
    # signed, but off the contract
    "contract: float amount": (
        off_contract(amount=1000.0),
        400,
        "Must be a JSON integer count of minor units",
    ),
    "contract: string amount": (
        off_contract(amount="1000"),
        400,
        "Must be a JSON integer count of minor units",
    ),
    "contract: zero amount": (off_contract(amount=0), 400, "greater than or equal to 1"),
    "contract: negative amount": (off_contract(amount=-1000), 400, "greater than or equal to 1"),
    "contract: unknown status": (off_contract(status=300), 400, "is not a valid choice"),
    "contract: currency too long": (off_contract(currency="CNYX"), 400, "no more than 3"),
    "contract: tx_no too long": (off_contract(tx_no="T" * 41), 400, "no more than 40"),
    "contract: out_trade_no too long": (
        off_contract(out_trade_no="R" * 65),
        400,
        "no more than 64",
    ),
    "contract: account_no too long": (
        off_contract(account_no="A" * 33),
        400,
        "no more than 32",
    ),
    "contract: NUL byte in tx_no": (
        off_contract(tx_no="TX\x00"),
        400,
        "Null characters are not allowed",
    ),
    "contract: unknown event type": (
        lambda doc: signed({**doc, "type": "recharge.refunded"}),
        400,
        "is not a valid choice",
    ),
    "contract: no data": (
        lambda doc: signed({k: v for k, v in doc.items() if k != "data"}),
        400,
        "This field is required",
    ),
}


@pytest.mark.parametrize(("build", "status", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_hostile_notification_is_refused_and_changes_nothing(
    client, recharge, build, status, message
):
    """Forged, unsigned, malformed, stale, tampered, truncated, non-JSON, wrong content type,
    oversized or off-contract: the 4xx and reason expected, and no row changed anywhere."""
    request = build(notification_payload(recharge))
    before = db_state()

    response = post(client, request)

    assert response.status_code == status
    assert message in error_text(response.json())
    assert db_state() == before


DISAGREEING = {
    "amount": ({"amount": 100000}, "amount 100000 does not match ours (1000)"),
    "currency": ({"currency": "USD"}, "currency 'USD' does not match ours ('CNY')"),
    "account": ({"account_no": "AC999999999999"}, "account_no 'AC999999999999' does not match"),
    "another tx_no": ({"tx_no": "TX-OTHER-MERCHANT"}, "tx_no 'TX-OTHER-MERCHANT' does not match"),
    "unknown order": ({"out_trade_no": "R-NOT-OURS"}, "no recharge with out_trade_no R-NOT-OURS"),
}


@pytest.mark.parametrize(("changes", "reason"), DISAGREEING.values(), ids=DISAGREEING.keys())
def test_signed_but_disagreeing_notification_is_409_never_applied(
    client, recharge, changes, reason
):
    """Correctly signed, but not the recharge we started (amount, currency, account, another
    tx_no, an order we never made): 409, the reason given, balances, ledger and statuses
    untouched; only a "rejected" receipt is written, for staff."""
    before = db_state()

    response = post(client, signed(notification_payload(recharge, **changes)))

    assert response.status_code == 409
    assert response.json()["outcome"] == "rejected"
    assert response.json()["detail"].startswith(reason)
    after = db_state()
    assert {k: v for k, v in after.items() if k != "receipts"} == {
        k: v for k, v in before.items() if k != "receipts"
    }
    [receipt] = InboundNotification.objects.all()
    assert (receipt.webhook_id, receipt.outcome) == (WEBHOOK_ID, "rejected")
    assert receipt.reason == response.json()["detail"]


# --- replay -------------------------------------------------------------------------------


def test_identical_replay_inside_the_tolerance_is_a_duplicate_and_changes_nothing(client, recharge):
    """The same signed request captured and sent again: 200 "duplicate"; the balance, the
    ledger and the recharge are exactly as the first delivery left them."""
    request = signed(notification_payload(recharge))
    first = post(client, request)
    assert (first.status_code, first.json()["outcome"]) == (200, "applied")
    after_first = db_state()

    replay = post(client, request)

    assert (replay.status_code, replay.json()) == (200, {"outcome": "duplicate", "detail": ""})
    after_replay = db_state()
    assert {k: v for k, v in after_replay.items() if k != "receipts"} == {
        k: v for k, v in after_first.items() if k != "receipts"
    }
    receipt = InboundNotification.objects.get()
    assert (receipt.deliveries, receipt.outcome) == (2, "duplicate")
    assert Account.objects.get().balance == 1000
    assert LedgerEntry.objects.count() == 1


def test_seen_webhook_id_with_a_different_payload_is_409_and_changes_nothing(client, recharge):
    """A correctly signed body under an already received webhook-id but with other content
    (a failure after a success): 409 naming the reuse, and not even the receipt changes."""
    assert post(client, signed(notification_payload(recharge))).status_code == 200
    before = db_state()

    response = post(client, signed(notification_payload(recharge, status=200)))

    assert response.status_code == 409
    assert response.json() == {
        "detail": f"webhook-id {WEBHOOK_ID} was already received with a different payload"
    }
    assert db_state() == before


def test_seen_webhook_id_with_reformatted_payload_is_refused(client, recharge):
    """Same JSON meaning, different bytes (whitespace): still not the notification received,
    refused; a genuine retry carries the same bytes."""
    doc = notification_payload(recharge)
    assert post(client, signed(doc)).status_code == 200
    before = db_state()
    reformatted = json.dumps(doc, indent=2)

    response = post(client, signed_raw(reformatted))

    assert response.status_code == 409
    assert "different payload" in response.json()["detail"]
    assert db_state() == before


def test_replay_outside_the_tolerance_is_refused(client, recharge):
    """The same request replayed once its timestamp is more than 5 minutes old: 400, before
    any receipt is looked at."""
    request = signed(
        notification_payload(recharge),
        timestamp=datetime.now(UTC) - timedelta(minutes=5, seconds=5),
    )
    before = db_state()

    response = post(client, request)

    assert response.status_code == 400
    assert "webhook-timestamp too old" in response.json()["detail"]
    assert db_state() == before


def test_timestamp_just_inside_the_tolerance_is_accepted(client, recharge):
    """A signature 4 minutes old is still inside the 5-minute tolerance (clock skew, a slow
    queue): applied."""
    request = signed(
        notification_payload(recharge), timestamp=datetime.now(UTC) - timedelta(minutes=4)
    )

    response = post(client, request)

    assert (response.status_code, response.json()["outcome"]) == (200, "applied")


def test_any_configured_secret_verifies(client, recharge, settings):
    """With several secrets configured (a rotation in progress), a body signed with any of
    them is accepted; one signed with none is refused."""
    settings.ACCOUNTS_WEBHOOK_SECRETS = [UNTRUSTED_SECRET, WEBHOOK_SECRET]

    assert post(client, signed(notification_payload(recharge))).status_code == 200
    settings.ACCOUNTS_WEBHOOK_SECRETS = [UNTRUSTED_SECRET]
    refused = post(
        client, signed(notification_payload(recharge, webhook_id="msg_2"), secret=WEBHOOK_SECRET)
    )
    assert refused.status_code == 400


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_are_405(client, db, method):
    """Only POST: anything else is 405 and touches nothing."""
    before = db_state()

    response = getattr(client, method)(NOTIFY_URL)

    assert response.status_code == 405
    assert db_state() == before


@pytest.fixture
def one_window(monkeypatch):
    """The clock stopped 30 s into the current minute, so a throttle's window cannot turn
    during the test (signatures made now stay well inside the 5-minute tolerance)."""
    stopped = time.time() // 60 * 60 + 30
    monkeypatch.setattr("time.time", lambda: stopped)


@pytest.mark.usefixtures("fresh_throttles", "one_window")
def test_verified_notifications_past_the_rate_are_429_and_change_nothing(
    client, recharge_factory, settings
):
    """ACCOUNTS_NOTIFY_THROTTLE_RATE bounds verified notifications per client address: past
    it, 429 with Retry-After, and the refused notification is neither recorded nor
    applied."""
    settings.ACCOUNTS_NOTIFY_THROTTLE_RATE = "2/min"
    applied = signed(notification_payload(recharge_factory()))
    assert post(client, applied).status_code == 200
    assert post(client, applied).status_code == 200  # a retry: the same budget
    refused = recharge_factory()
    before = db_state()

    response = post(client, signed(notification_payload(refused, webhook_id="msg_refused")))

    assert response.status_code == 429
    assert "Request was throttled" in response.json()["detail"]
    assert int(response["Retry-After"]) == 30
    assert db_state() == before
    assert not InboundNotification.objects.filter(webhook_id="msg_refused").exists()


JUNK = {
    "unsigned {}": Request("{}", {}),
    "forged": Request("{}", {**sign("{}", webhook_id=WEBHOOK_ID), "webhook-signature": SIG}),
    "not JSON (415)": Request("{}", {}, content_type="text/plain"),
}


@pytest.mark.usefixtures("fresh_throttles", "one_window")
def test_junk_spends_only_the_failure_budget(client, recharge, settings):
    """Requests failing verification (or not JSON) spend ACCOUNTS_NOTIFY_FAILURE_THROTTLE_RATE
    alone: once it is spent that address's junk is 429 with Retry-After instead of 400/415,
    changing nothing, while a correctly signed notification from the same address is still
    applied, with the whole of ACCOUNTS_NOTIFY_THROTTLE_RATE left to it."""
    settings.ACCOUNTS_NOTIFY_FAILURE_THROTTLE_RATE = "5/min"
    settings.ACCOUNTS_NOTIFY_THROTTLE_RATE = "2/min"
    assert [post(client, Request("{}", {})).status_code for _ in range(5)] == [400] * 5
    before = db_state()

    refused = {name: post(client, junk) for name, junk in JUNK.items()}

    for response in refused.values():
        assert response.status_code == 429
        assert "Too many requests failing verification" in response.json()["detail"]
        assert int(response["Retry-After"]) == 30
    assert db_state() == before
    assert not InboundNotification.objects.exists() and not LedgerEntry.objects.exists()
    genuine = signed(notification_payload(recharge))
    first, retry = post(client, genuine), post(client, genuine)
    assert (first.status_code, first.json()["outcome"]) == (200, "applied")
    assert (retry.status_code, retry.json()["outcome"]) == (200, "duplicate")
    assert Account.objects.get().balance == 1000
    assert post(client, genuine).status_code == 429  # the verified budget is counted, apart


# --- concurrency --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_fifty_identical_concurrent_deliveries_apply_once_and_never_500(recharge_factory):
    """50 copies of one signed notification POSTed at once: no 5xx, every answer a 200
    (one "applied", the rest "duplicate"), one ledger entry, the balance credited once and
    one receipt counting 50 deliveries."""
    recharge = recharge_factory(amount=1000)
    request = signed(notification_payload(recharge))

    def deliver():
        response = post(Client(), request)
        body = response.json() if response.status_code < 500 else {}
        return response.status_code, body.get("outcome")

    results = run_concurrently(deliver, threads=50)

    assert len(results) == 50
    assert sorted(results) == sorted([(200, "applied")] + [(200, "duplicate")] * 49)
    assert Recharge.objects.get().status == Recharge.Status.SUCCEEDED
    assert Account.objects.get().balance == 1000
    assert LedgerEntry.objects.count() == 1
    receipt = InboundNotification.objects.get()
    assert receipt.deliveries == 50
