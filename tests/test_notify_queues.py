"""Queue notify URLs on both sides (scheme 1): payments lets a merchant use ``queue://<name>``
only for the queues staff gave it (``Merchant.notify_queues``); accounts asks for one with
``ACCOUNTS_NOTIFY_TRANSPORT=queue`` and applies what its subscriber consumes
(accounts/queue_receiver.py) exactly as its notify API would."""

import hashlib
import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import responses
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts import services as accounts_services
from accounts.models import Account, InboundNotification, LedgerEntry, Recharge
from accounts.payments_client import PaymentsClient
from accounts.queue_receiver import notification_consume
from notifications.models import Notification
from payments.models import Merchant, RechargeOrder
from payments.services import recharge_order_pay
from tests.conftest import sign
from tests.helpers import WEBHOOK_ID, notification_payload, order_request

CREATE_URL = reverse("payments:recharge-create")
Outcome = InboundNotification.Outcome
Status = Recharge.Status


# --- payments -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("queue://accounts", "not among this merchant's notify queues"),
        ("queue://Accounts", "queue://<name>"),
        ("queue://", "queue://<name>"),
    ],
)
def test_a_queue_notify_url_not_given_to_the_merchant_is_400(merchant_api, url, reason):
    """A merchant without that queue (or with a malformed one): 400 naming notify_url and
    why, no order, no notification."""
    response = merchant_api.post(CREATE_URL, order_request(notify_url=url), format="json")

    assert response.status_code == 400
    assert reason in response.json()["notify_url"][0]
    assert not RechargeOrder.objects.exists()
    assert not Notification.objects.exists()


def test_a_queue_return_url_is_400(merchant_api, merchant):
    """A queue is for notifications only: as return_url it is refused."""
    Merchant.objects.filter(pk=merchant.pk).update(notify_queues=["accounts"])

    response = merchant_api.post(
        CREATE_URL, order_request(return_url="queue://accounts"), format="json"
    )

    assert response.status_code == 400
    assert "return_url" in response.json()


def test_a_merchant_given_a_queue_is_notified_on_it(merchant_api, merchant, deliver_apply_async):
    """With notify_queues ["accounts"], queue://accounts is accepted and the paid order's
    notification targets it, on an endpoint of its own."""
    Merchant.objects.filter(pk=merchant.pk).update(notify_queues=["accounts"])

    response = merchant_api.post(
        CREATE_URL, order_request(notify_url="queue://accounts"), format="json"
    )
    assert response.status_code == 201, response.json()
    recharge_order_pay(tx_no=RechargeOrder.objects.get().tx_no)

    notification = Notification.objects.get()
    assert notification.target_url == "queue://accounts"
    assert notification.endpoint.origin == "queue://accounts"


def test_create_merchant_gives_notify_queues(db):
    """create_merchant --notify-queue (repeatable) stores the names and prints them."""
    out = StringIO()
    call_command(
        "create_merchant",
        "Wallet",
        "--notify-queue",
        "accounts",
        "--notify-queue",
        "audit-2",
        stdout=out,
    )

    assert Merchant.objects.get().notify_queues == ["accounts", "audit-2"]
    assert "notify queues:  accounts, audit-2" in out.getvalue()


def test_create_merchant_refuses_a_malformed_queue_name(db):
    """A name that is not 1-40 of a-z, 0-9 or -: refused with the reason, no merchant."""
    with pytest.raises(CommandError, match="queue name"):
        call_command("create_merchant", "Wallet", "--notify-queue", "Bad_Name", stdout=StringIO())
    assert not Merchant.objects.exists()


def test_seed_demo_gives_the_demo_merchant_accounts_queue(settings, db):
    """The development merchant may notify accounts on its queue (ACCOUNTS_NOTIFY_QUEUE),
    so ``make run`` works with ACCOUNTS_NOTIFY_TRANSPORT=queue."""
    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())

    merchant = Merchant.objects.get(api_key_prefix=settings.DEV_PAYMENTS_API_KEY[:16])
    assert merchant.notify_queues == [settings.ACCOUNTS_NOTIFY_QUEUE]


# --- accounts: the notify_url it asks for -------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "notify_url"),
    [
        ("http", "https://wallet.example/api/accounts/notify/"),
        ("queue", "queue://wallet-q"),
    ],
)
def test_accounts_asks_to_be_notified_over_its_transport(account, settings, transport, notify_url):
    """ACCOUNTS_NOTIFY_TRANSPORT decides the notify_url of every order accounts creates."""
    settings.ACCOUNTS_PUBLIC_URL = "https://wallet.example/"
    settings.ACCOUNTS_NOTIFY_TRANSPORT = transport
    settings.ACCOUNTS_NOTIFY_QUEUE = "wallet-q"
    client = PaymentsClient(base_url="https://pay.example", api_key="sk_test", timeout=5)
    with responses.RequestsMock() as api:
        api.add(
            responses.POST,
            "https://pay.example/api/payments/recharges/",
            status=201,
            json={"tx_no": "TX-Q", "cashier_url": "https://pay.example/pay/TX-Q/", "status": 0},
        )
        accounts_services.recharge_start(account=account, amount=2500, client=client)
        sent = json.loads(api.calls[0].request.body)

    assert sent["notify_url"] == notify_url


# --- accounts: the queue handler --------------------------------------------------------


def consume(document: dict, *, webhook_id: str = WEBHOOK_ID, **sign_kwargs):
    """Hand ``document`` to the handler as the subscriber would: bytes and the message's
    headers (the signed ones and ``attempt``)."""
    body = json.dumps(document)
    headers = {**sign(body, webhook_id=webhook_id, **sign_kwargs), "attempt": 1}
    headers.pop("Content-Type")
    return notification_consume(body.encode(), headers)


def balance(recharge) -> int:
    return Account.objects.values_list("balance", flat=True).get(pk=recharge.account_id)


def test_a_verified_notification_is_applied_once(recharge):
    """ok: credited once, the receipt logged; the same message again is ok, a duplicate."""
    assert consume(notification_payload(recharge)) == (True, Outcome.APPLIED)
    assert consume(notification_payload(recharge)) == (True, Outcome.DUPLICATE)

    assert balance(recharge) == 1000
    assert LedgerEntry.objects.count() == 1
    receipt = InboundNotification.objects.get()
    assert (receipt.webhook_id, receipt.deliveries) == (WEBHOOK_ID, 2)


def test_a_mismatching_notification_is_refused_and_recorded(recharge):
    """An amount that disagrees with our recharge: not ok (the message is refused), the
    rejection recorded for staff as over HTTP, nothing credited."""
    ok, reason = consume(notification_payload(recharge, amount=999))

    assert ok is False
    assert "amount" in reason
    assert balance(recharge) == 0
    assert InboundNotification.objects.get().outcome == Outcome.REJECTED
    assert Recharge.objects.get(pk=recharge.pk).status == Status.PENDING


@pytest.mark.parametrize(
    ("sign_kwargs", "reason"),
    [
        ({"secret": "whsec_YW5vdGhlci1zZWNyZXQtbm90LXRydXN0ZWQtYnktYWNjb3VudHM="}, "signature"),
        ({"timestamp": datetime.now(UTC) - timedelta(minutes=10)}, "too old"),
    ],
)
def test_an_unverified_notification_is_refused_and_changes_nothing(recharge, sign_kwargs, reason):
    """Forged or stale: not ok with the reason, no receipt, no credit (the same Standard
    Webhooks checks as the notify API)."""
    ok, detail = consume(notification_payload(recharge), **sign_kwargs)

    assert ok is False
    assert reason in detail
    assert not InboundNotification.objects.exists()
    assert balance(recharge) == 0


def test_a_payload_id_other_than_the_webhook_id_is_refused(recharge):
    """The body's id must be the webhook-id header: refused, nothing recorded."""
    ok, detail = consume(notification_payload(recharge), webhook_id="msg_other")

    assert ok is False
    assert "webhook-id" in detail
    assert not InboundNotification.objects.exists()


def test_a_reused_webhook_id_with_another_body_is_refused(recharge):
    """A webhook-id seen with other bytes: refused, the first receipt unchanged."""
    consume(notification_payload(recharge))
    first = InboundNotification.objects.get().payload_sha256

    ok, _ = consume(notification_payload(recharge, out_trade_no="R-OTHER"))

    assert ok is False
    assert InboundNotification.objects.get().payload_sha256 == first
    assert first == hashlib.sha256(json.dumps(notification_payload(recharge)).encode()).hexdigest()
