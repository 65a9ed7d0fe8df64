"""The receiver endpoint ``POST /api/accounts/notify/`` (accounts/apis.py, webhooks.py).

Bodies are raw JSON strings signed with ``tests.conftest.sign``, exactly as payments sends.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Account, InboundNotification, LedgerEntry, Recharge
from tests.conftest import WEBHOOK_SECRET, sign
from tests.helpers import WEBHOOK_ID, notification_payload

NOTIFY_URL = reverse("accounts:notify")
OTHER_SECRET = "whsec_YW5vdGhlci1zZWNyZXQtbm90LXRydXN0ZWQtYnktYWNjb3VudHM="
Status = Recharge.Status

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def notify(client, body, headers):
    """POST ``body`` (str or bytes) with the given headers, as the delivery worker does."""
    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    return client.post(NOTIFY_URL, data=body, content_type="application/json", headers=headers)


def send(client, document, *, webhook_id=WEBHOOK_ID, **sign_kwargs):
    body = json.dumps(document)
    return notify(client, body, sign(body, webhook_id=webhook_id, **sign_kwargs))


def state_of(recharge):
    """What a notification may change: status, balance, ledger size."""
    return (
        Recharge.objects.values_list("status", flat=True).get(pk=recharge.pk),
        Account.objects.values_list("balance", flat=True).get(pk=recharge.account_id),
        LedgerEntry.objects.count(),
    )


UNCHANGED = (Status.PENDING, 0, 0)


def test_valid_notification_is_applied(client, recharge):
    """A signed success: 200 "applied", the balance credited once, the receipt logged."""
    response = send(client, notification_payload(recharge))

    assert response.status_code == 200
    assert response.json()["outcome"] == "applied"
    assert state_of(recharge) == (Status.SUCCEEDED, 1000, 1)
    receipt = InboundNotification.objects.get()
    assert (receipt.webhook_id, receipt.tx_no, receipt.deliveries, receipt.outcome) == (
        WEBHOOK_ID,
        recharge.tx_no,
        1,
        "applied",
    )


def test_failed_notification_closes_without_credit(client, recharge):
    """A signed recharge.failed: 200 "applied", status 200, nothing credited."""
    response = send(client, notification_payload(recharge, status=200))

    assert (response.status_code, response.json()["outcome"]) == (200, "applied")
    assert state_of(recharge) == (Status.FAILED, 0, 0)


def test_same_notification_again_is_a_duplicate(client, recharge):
    """A retry of an applied notification: 200 "duplicate", still one ledger entry."""
    send(client, notification_payload(recharge))

    response = send(client, notification_payload(recharge))

    assert response.status_code == 200
    assert response.json()["outcome"] == "duplicate"
    assert state_of(recharge) == (Status.SUCCEEDED, 1000, 1)
    receipt = InboundNotification.objects.get()
    assert (receipt.deliveries, receipt.outcome) == (2, "duplicate")


def test_retry_of_an_applied_notification_does_not_touch_the_recharge(client, recharge):
    """The same bytes again after "applied": answered "duplicate" from the receipt alone,
    without reading or locking the recharge (a sender's retries are the common repeat)."""
    send(client, notification_payload(recharge))

    with CaptureQueriesContext(connection) as queries:
        response = send(client, notification_payload(recharge))

    assert (response.status_code, response.json()["outcome"]) == (200, "duplicate")
    recharge_table = Recharge._meta.db_table
    assert not [q["sql"] for q in queries.captured_queries if recharge_table in q["sql"]]
    assert state_of(recharge) == (Status.SUCCEEDED, 1000, 1)


def test_retry_of_a_rejected_notification_is_checked_again(client, recharge):
    """After a rejection the same bytes are checked against the recharge again (and
    rejected again), not taken for a duplicate."""
    document = notification_payload(recharge, amount=999)
    assert send(client, document).status_code == 409

    response = send(client, document)

    assert (response.status_code, response.json()["outcome"]) == (409, "rejected")
    assert state_of(recharge) == UNCHANGED
    receipt = InboundNotification.objects.get()
    assert (receipt.deliveries, receipt.outcome) == (2, "rejected")


def test_notify_needs_no_csrf_token(recharge):
    """The worker has no browser session: the endpoint is CSRF-exempt, the signature is
    what authenticates it."""
    response = send(Client(enforce_csrf_checks=True), notification_payload(recharge))

    assert response.status_code == 200


def test_rotated_secret_is_accepted(client, recharge, settings):
    """During a rotation accounts trusts both secrets; a body signed with either applies."""
    settings.ACCOUNTS_WEBHOOK_SECRETS = [OTHER_SECRET, WEBHOOK_SECRET]

    assert send(client, notification_payload(recharge)).status_code == 200
    assert state_of(recharge) == (Status.SUCCEEDED, 1000, 1)


# --- refused with 400, nothing changed ----------------------------------------------------


def signed(document, **sign_kwargs):
    body = json.dumps(document)
    return body, sign(body, webhook_id=WEBHOOK_ID, **sign_kwargs)


def without(headers, name):
    return {k: v for k, v in headers.items() if k != name}


def bad_signature(doc):
    return signed(doc, secret=OTHER_SECRET)


def tampered_body(doc):
    body, headers = signed(doc)
    return body.replace('"amount": 1000', '"amount": 100000'), headers


def stale_timestamp(doc):
    return signed(doc, timestamp=datetime.now(UTC) - timedelta(minutes=10))


def future_timestamp(doc):
    return signed(doc, timestamp=datetime.now(UTC) + timedelta(minutes=10))


def missing(header):
    def build(doc):
        body, headers = signed(doc)
        return body, without(headers, header)

    build.__name__ = f"missing_{header}"
    return build


def no_headers(doc):
    return json.dumps(doc), {}


def with_signature(value):
    def build(doc):
        body, headers = signed(doc)
        return body, {**headers, "webhook-signature": value}

    return build


def with_timestamp(value):
    def build(doc):
        body, headers = signed(doc)
        return body, {**headers, "webhook-timestamp": value}

    return build


def signed_raw(raw):
    def build(doc):
        return raw, sign(raw, webhook_id=WEBHOOK_ID)

    return build


def body_id_differs(doc):
    return signed({**doc, "id": "msg_another"})


def wrong_type(doc):
    return signed({**doc, "type": "recharge.refunded"})


def data_field(**changes):
    def build(doc):
        return signed({**doc, "data": {**doc["data"], **changes}})

    return build


def data_without(field):
    def build(doc):
        return signed({**doc, "data": {k: v for k, v in doc["data"].items() if k != field}})

    return build


REFUSED = {
    "bad signature": bad_signature,
    "tampered body": tampered_body,
    "stale timestamp": stale_timestamp,
    "future timestamp": future_timestamp,
    "timestamp not a number": with_timestamp("yesterday"),
    "no webhook-id": missing("webhook-id"),
    "no webhook-timestamp": missing("webhook-timestamp"),
    "no webhook-signature": missing("webhook-signature"),
    "no headers": no_headers,
    "signature without comma": with_signature("v1"),
    "signature bad base64": with_signature("v1,abc"),
    "signature too many commas": with_signature("v1,a,b"),
    "signature unknown version": with_signature("v9,AAAA"),
    "body not JSON": signed_raw("this is not json"),
    "body a JSON list": signed_raw("[1, 2, 3]"),
    "body not UTF-8": lambda doc: (b"\xff\xfe{}", sign("{}", webhook_id=WEBHOOK_ID)),
    "payload id differs from webhook-id": body_id_differs,
    "wrong type": wrong_type,
    "float amount": data_field(amount=1000.0),
    "string amount": data_field(amount="1000"),
    "zero amount": data_field(amount=0),
    "unknown status": data_field(status=300),
    "no data": lambda doc: signed({k: v for k, v in doc.items() if k != "data"}),
    "no amount": data_without("amount"),
    "no out_trade_no": data_without("out_trade_no"),
}


@pytest.mark.parametrize("build", REFUSED.values(), ids=REFUSED.keys())
def test_untrusted_or_malformed_notification_is_400_and_changes_nothing(client, recharge, build):
    """Unsigned, forged, stale, malformed or off-contract: 400, and the balance, ledger,
    recharge status and receipt log are untouched."""
    body, headers = build(notification_payload(recharge))

    response = notify(client, body, headers)

    assert response.status_code == 400
    assert state_of(recharge) == UNCHANGED
    assert not InboundNotification.objects.exists()


# --- disagreeing with our recharge: 409, logged for staff ---------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", 100000),
        ("currency", "USD"),
        ("account_no", "AC999999999999"),
        ("tx_no", "TX-NOT-OURS"),
        ("out_trade_no", "R-UNKNOWN"),
    ],
)
def test_disagreeing_notification_is_409_and_recorded_as_rejected(client, recharge, field, value):
    """Correctly signed but not matching the recharge we started: 409, never applied, and
    an InboundNotification with outcome "rejected" for staff."""
    response = send(client, notification_payload(recharge, **{field: value}))

    assert response.status_code == 409
    assert response.json()["outcome"] == "rejected"
    assert state_of(recharge) == UNCHANGED
    receipt = InboundNotification.objects.get()
    assert (receipt.webhook_id, receipt.outcome) == (WEBHOOK_ID, "rejected")
    assert receipt.reason


def test_notification_contradicting_a_final_status_is_409(client, recharge):
    """Already failed, a success notification is refused (409): no credit."""
    failed = send(
        client,
        notification_payload(recharge, status=200, webhook_id="msg_failed"),
        webhook_id="msg_failed",
    )
    assert failed.status_code == 200

    response = send(
        client, notification_payload(recharge, webhook_id="msg_late"), webhook_id="msg_late"
    )

    assert response.status_code == 409
    assert state_of(recharge) == (Status.FAILED, 0, 0)
    assert InboundNotification.objects.get(webhook_id="msg_late").outcome == "rejected"


def test_tx_no_of_another_recharge_is_409_and_recorded(client, recharge_factory):
    """Our recharge has no tx_no yet (its create call never returned); a notification giving
    it another recharge's tx_no is rejected and recorded, not a 500 on the unique tx_no."""
    other = recharge_factory(amount=1000)
    ours = recharge_factory(amount=1000, tx_no=None)

    response = send(client, notification_payload(ours, tx_no=other.tx_no))

    assert (response.status_code, response.json()["outcome"]) == (409, "rejected")
    assert "belongs to another recharge" in response.json()["detail"]
    assert state_of(ours) == UNCHANGED
    assert InboundNotification.objects.get().outcome == "rejected"


def test_pending_status_is_409_not_final(client, recharge):
    """Payments notifies final statuses only: a notification saying "pending" is rejected
    and recorded as such (not taken for a duplicate)."""
    response = send(client, notification_payload(recharge, status=0))

    assert (response.status_code, response.json()["outcome"]) == (409, "rejected")
    assert response.json()["detail"] == "status is not final"
    assert state_of(recharge) == UNCHANGED


def test_receipt_left_uncounted_still_refuses_another_payload(client, recharge):
    """A receipt row recorded with a payload hash but no delivery counted (an older version
    wrote the two apart): another payload under its webhook-id is still refused, unapplied."""
    InboundNotification.objects.create(webhook_id=WEBHOOK_ID, payload_sha256="d" * 64, deliveries=0)

    response = send(client, notification_payload(recharge))

    assert response.status_code == 409
    assert "different payload" in response.json()["detail"]
    assert state_of(recharge) == UNCHANGED
    receipt = InboundNotification.objects.get()
    assert (receipt.deliveries, receipt.payload_sha256) == (0, "d" * 64)


def test_get_is_405(client, db):
    """The endpoint only takes POST."""
    assert client.get(NOTIFY_URL).status_code == 405
