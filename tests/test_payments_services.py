"""Recharge orders (payments/services.py): idempotent create, guarded transitions, outbox."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Notification
from payments import services
from payments.models import RechargeOrder
from payments.selectors import merchant_for_api_key, merchant_webhook_secrets
from tests.helpers import order_request, run_concurrently

Status = RechargeOrder.Status
TRANSITIONS = {
    "pay": services.recharge_order_pay,
    "decline": services.recharge_order_decline,
    "cancel": services.recharge_order_cancel,
    "expire": services.recharge_order_expire,
}


@pytest.fixture(autouse=True)
def _no_broker(deliver_apply_async):
    """Notifications are written, never sent to Redis, in these tests."""


def create(merchant, **overrides):
    """``recharge_order_create`` of the standard order (``overrides`` applied) for
    ``merchant``: returns ``(order, created)``."""
    return services.recharge_order_create(**order_request(merchant=merchant, **overrides))


def body_of(notification):
    return json.loads(notification.body)


# --- merchants ----------------------------------------------------------------------------


def test_merchant_create_stores_only_a_hash_of_the_api_key(db):
    """Onboarding returns the key once; it authenticates, and is not stored in clear."""
    credentials = services.merchant_create(name="Shop")

    merchant = credentials.merchant
    assert credentials.api_key.startswith("sk_")
    assert credentials.webhook_secret.startswith("whsec_")
    assert credentials.api_key not in (merchant.api_key_hash, merchant.api_key_prefix)
    assert merchant_for_api_key(api_key=credentials.api_key) == merchant
    assert merchant_for_api_key(api_key=credentials.api_key + "x") is None
    assert merchant_webhook_secrets(merchant.app_id) == [credentials.webhook_secret]


# --- create -------------------------------------------------------------------------------


def test_create_makes_a_pending_order(merchant):
    """A new out_trade_no: a pending order with an opaque tx_no, created True."""
    order, created = create(merchant)

    assert created is True
    assert order.status == Status.PENDING
    assert (order.merchant, order.out_trade_no, order.amount) == (merchant, "SHOP-0001", 1234)
    assert order.tx_no.startswith(timezone.now().strftime("%Y%m%d")) and len(order.tx_no) == 28
    assert order.paid_at is None and order.finished_at is None
    assert not Notification.objects.exists()


def test_create_is_idempotent_on_out_trade_no(merchant):
    """The same out_trade_no with the same parameters returns the same order, created False."""
    first, _ = create(merchant)

    again, created = create(merchant)

    assert created is False
    assert again.pk == first.pk and again.tx_no == first.tx_no
    assert RechargeOrder.objects.count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", 1235),
        ("currency", "USD"),
        ("account_no", "AC000000000002"),
        ("notify_url", "https://evil.example/notify"),
        ("return_url", "https://merchant.example/elsewhere"),
    ],
)
def test_reused_out_trade_no_with_other_parameters_conflicts(merchant, field, value):
    """Reusing an out_trade_no for a different order raises OrderConflict, changing nothing."""
    original, _ = create(merchant)

    with pytest.raises(services.OrderConflict, match="SHOP-0001"):
        create(merchant, **{field: value})

    assert RechargeOrder.objects.count() == 1
    original.refresh_from_db()
    assert getattr(original, field) == order_request()[field]


def test_out_trade_no_is_unique_per_merchant_only(merchant, other_merchant):
    """Two merchants may each use the same out_trade_no: two orders, two tx_nos."""
    mine, created_mine = create(merchant)
    theirs, created_theirs = create(other_merchant, amount=999)

    assert created_mine and created_theirs
    assert mine.tx_no != theirs.tx_no
    assert (mine.merchant, theirs.merchant) == (merchant, other_merchant)


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_creates_make_one_order(merchant):
    """Two identical requests racing: the unique constraint decides; both get one order."""
    results = run_concurrently(lambda: create(merchant), threads=2)

    assert len(results) == 2
    assert RechargeOrder.objects.count() == 1
    assert sorted(created for _, created in results) == [False, True]
    assert len({order.tx_no for order, _ in results}) == 1


# --- transitions --------------------------------------------------------------------------


def test_pay_moves_0_to_100_and_writes_one_succeeded_notification(merchant, order_factory):
    """Paying: status 100, paid_at and finished_at set, one recharge.succeeded notification
    to the order's notify_url carrying the order's data (amount an int)."""
    order = order_factory()

    paid = services.recharge_order_pay(tx_no=order.tx_no)

    assert paid.status == Status.SUCCEEDED
    assert paid.paid_at is not None and paid.finished_at == paid.paid_at
    assert paid.failure_reason == ""
    notification = Notification.objects.get()
    assert notification.event_type == "recharge.succeeded"
    assert notification.subject == order.tx_no
    assert notification.sender_key == merchant.app_id
    assert notification.target_url == order.notify_url
    body = body_of(notification)
    assert body["type"] == "recharge.succeeded"
    assert body["data"] == {
        "tx_no": order.tx_no,
        "out_trade_no": order.out_trade_no,
        "account_no": "AC000000000001",
        "amount": 1234,
        "currency": "CNY",
        "status": 100,
        "paid_at": paid.paid_at.isoformat().replace("+00:00", "Z"),
        "failure_reason": "",
    }
    assert type(body["data"]["amount"]) is int


@pytest.mark.parametrize(
    ("action", "reason"),
    [("decline", "declined"), ("cancel", "cancelled"), ("expire", "expired")],
)
def test_decline_cancel_and_expire_move_0_to_200_with_a_failed_notification(
    order_factory, action, reason
):
    """Declining, cancelling or expiring: status 200 with the reason, no paid_at, one
    recharge.failed whose data carries that failure_reason."""
    order = order_factory()

    failed = TRANSITIONS[action](tx_no=order.tx_no)

    assert failed.status == Status.FAILED
    assert failed.failure_reason == reason
    assert failed.paid_at is None and failed.finished_at is not None
    notification = Notification.objects.get()
    assert notification.event_type == "recharge.failed"
    data = body_of(notification)["data"]
    assert (data["status"], data["paid_at"], data["amount"]) == (200, None, 1234)
    assert data["failure_reason"] == reason


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("pay", "decline"),  # 100 → 200
        ("pay", "expire"),  # 100 → 200
        ("decline", "pay"),  # 200 → 100
        ("expire", "pay"),  # 200 → 100
        ("pay", "pay"),  # 100 → 100
        ("decline", "decline"),  # 200 → 200
        ("cancel", "pay"),  # 200 → 100
        ("pay", "cancel"),  # 100 → 200
    ],
)
def test_a_final_order_never_moves_again(order_factory, first, second):
    """Any transition out of a final status is a no-op: status, timestamps and reason stay,
    and no second notification is written."""
    order = order_factory()
    final = TRANSITIONS[first](tx_no=order.tx_no)

    after = TRANSITIONS[second](tx_no=order.tx_no)

    assert after.status == final.status
    assert (after.paid_at, after.finished_at) == (final.paid_at, final.finished_at)
    assert after.failure_reason == final.failure_reason
    assert Notification.objects.count() == 1


def test_unknown_tx_no_raises_does_not_exist(db):
    """Finishing an order that does not exist is an error, not a silent no-op."""
    with pytest.raises(RechargeOrder.DoesNotExist):
        services.recharge_order_pay(tx_no="nope")
    assert not Notification.objects.exists()


def test_notification_is_enqueued_only_when_the_status_commits(
    order_factory, django_capture_on_commit_callbacks, deliver_apply_async
):
    """The delivery task is sent on commit of the status change, with the notification id."""
    order = order_factory()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.recharge_order_pay(tx_no=order.tx_no)
        deliver_apply_async.assert_not_called()

    assert len(callbacks) == 1
    notification = Notification.objects.get()
    assert deliver_apply_async.call_args.kwargs["args"] == (str(notification.pk),)


# --- expiry -------------------------------------------------------------------------------


def test_expire_stale_expires_only_old_pending_orders(order_factory, settings):
    """Only orders pending longer than PAYMENTS_ORDER_TTL expire; young or final ones stay."""
    settings.PAYMENTS_ORDER_TTL = 30 * 60
    now = timezone.now()
    stale, young, paid_long_ago = order_factory(), order_factory(), order_factory()
    services.recharge_order_pay(tx_no=paid_long_ago.tx_no)
    RechargeOrder.objects.filter(pk__in=[stale.pk, paid_long_ago.pk]).update(
        created_at=now - timedelta(minutes=31)
    )
    RechargeOrder.objects.filter(pk=young.pk).update(created_at=now - timedelta(minutes=29))

    assert services.recharge_orders_expire_stale() == 1

    statuses = dict(RechargeOrder.objects.values_list("pk", "status"))
    assert statuses == {stale.pk: 200, young.pk: 0, paid_long_ago.pk: 100}
    stale.refresh_from_db()
    assert stale.failure_reason == "expired"
    assert sorted(Notification.objects.values_list("event_type", flat=True)) == [
        "recharge.failed",
        "recharge.succeeded",
    ]
    assert services.recharge_orders_expire_stale() == 0
