"""Scheme 1 end to end: accounts receives its notifications from the queue
(``ACCOUNTS_NOTIFY_TRANSPORT=queue``), on Redis and on RabbitMQ.

The real stack (web, payments, worker, and the Procfile's ``subscriber``) on the broker each
case names: a person tops up and pays; the worker publishes the notification to
``queue://accounts``; the subscriber verifies and applies it and acknowledges; the worker
records the acknowledgement. The scheme-1 ladder (1m, 5m, 10m, ...) runs at a hundredth of
its pace (``NOTIFY_TIME_SCALE``: 0.6 s, 3 s, 6 s, ...).
"""

import os

import pytest
from django.conf import settings
from kombu import Connection

from accounts.models import InboundNotification, LedgerEntry, Recharge
from audit.checks import audit
from devstack.broker import rabbitmq_delete, rabbitmq_delete_notify
from notifications.models import Notification
from payments.models import Merchant
from tests.e2e.test_recharge_flow import browser_at_cashier, wait_until

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
AMOUNTS = ("1.00", "2.00", "3.00")
Delivered = Notification.State.DELIVERED


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request) -> str:
    """Each case on Redis (the test's REDIS_URL) and on RabbitMQ (``RABBITMQ_URL``, the
    namespace's queues deleted first); skipped where no RabbitMQ answers, failed under CI
    (``CI`` set, as .ci/run sets it), which installs one."""
    if request.param == "redis":
        return settings.REDIS_URL
    try:
        rabbitmq_delete(url=RABBITMQ_URL, namespace=settings.DEPLOYMENT_NAMESPACE)
        rabbitmq_delete_notify(
            url=RABBITMQ_URL, namespace=settings.DEPLOYMENT_NAMESPACE, names=("accounts",)
        )
    except OSError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no RabbitMQ at RABBITMQ_URL={RABBITMQ_URL} ({exc})")
    return RABBITMQ_URL


@pytest.fixture
def queue_stack(start_stack, stack_merchant, broker_url):
    """``queue_stack(processes)``: the stack with accounts on the queue transport, its
    merchant given queue "accounts"."""
    Merchant.objects.filter(pk=stack_merchant.merchant.pk).update(notify_queues=["accounts"])

    def start(processes=("web", "payments", "worker", "subscriber")):
        return start_stack(
            processes=processes,
            CELERY_BROKER_URL=broker_url,
            ACCOUNTS_NOTIFY_TRANSPORT="queue",
            NOTIFY_TIME_SCALE="0.01",
        )

    return start


def pay(stack, customer, amount: str) -> Recharge:
    """Top up ``amount`` and pay: the new recharge."""
    browser, cashier_url = browser_at_cashier(stack, customer, amount)
    browser.finish(cashier_url, "pay")
    return Recharge.objects.filter(account=customer.account).latest("created_at")


def wait_delivered(stack, recharges) -> list[Notification]:
    tx_nos = [recharge.tx_no for recharge in recharges]
    wait_until(
        lambda: (
            Notification.objects.filter(subject__in=tx_nos, state=Delivered).count() == len(tx_nos)
        ),
        what=f"{len(tx_nos)} notifications delivered",
        stack=stack,
    )
    return list(Notification.objects.filter(subject__in=tx_nos))


def credited(recharges) -> list[tuple[str, int]]:
    """``(tx_no, amount)`` of each ledger entry of these recharges, sorted."""
    entries = LedgerEntry.objects.filter(tx_no__in=[r.tx_no for r in recharges])
    return sorted((entry.tx_no, entry.amount) for entry in entries)


@pytest.mark.e2e
def test_paid_orders_are_credited_once_each_through_the_queue(queue_stack, customer):
    """Three orders paid: each notification targets queue://accounts, is published once,
    applied by the subscriber and acknowledged (delivered, attempt 1 succeeded); each
    recharge credited exactly once, and the books check clean."""
    stack = queue_stack()
    recharges = [pay(stack, customer, amount) for amount in AMOUNTS]

    notifications = wait_delivered(stack, recharges)

    assert credited(recharges) == sorted((r.tx_no, r.amount) for r in recharges)
    for notification in notifications:
        assert notification.target_url == "queue://accounts"
        attempt = notification.attempts.get(number=1)
        assert (attempt.succeeded, attempt.response_excerpt) == (True, "acknowledged")
    receipts = InboundNotification.objects.filter(tx_no__in=[r.tx_no for r in recharges])
    assert sorted(receipt.outcome for receipt in receipts) == ["applied"] * 3
    report = audit()
    assert report.clean, report.problems()


@pytest.mark.e2e
def test_a_stopped_subscriber_is_published_to_again_and_delivered_once_it_is_back(
    queue_stack, customer
):
    """With the subscriber stopped, the paid orders' notifications are published again on
    the (scaled) ladder, unacknowledged; once it is back it consumes every copy: each
    recharge credited once, the copies counted as duplicates, every notification
    delivered, the books clean."""
    stack = queue_stack()
    stack.stop("subscriber")
    recharges = [pay(stack, customer, amount) for amount in AMOUNTS[:2]]
    tx_nos = [recharge.tx_no for recharge in recharges]
    wait_until(
        lambda: Notification.objects.filter(subject__in=tx_nos, attempt_count__gte=2).count() == 2,
        what="both notifications published a second time",
        stack=stack,
    )
    assert not LedgerEntry.objects.exists()
    assert not Notification.objects.filter(state=Delivered).exists()

    stack.start("subscriber")
    notifications = wait_delivered(stack, recharges)

    assert credited(recharges) == sorted((r.tx_no, r.amount) for r in recharges)
    for notification in notifications:
        assert notification.attempts.filter(succeeded=True).exists()
        receipt = InboundNotification.objects.get(webhook_id=notification.webhook_id)
        assert receipt.deliveries >= 2  # every copy published was applied or a duplicate
    report = audit()
    assert report.clean, report.problems()


@pytest.mark.e2e
def test_a_notification_the_handler_refuses_is_not_credited_and_published_again(
    queue_stack, customer
):
    """Our recharge's amount changed after the order was made: the subscriber refuses the
    notification (amount mismatch, recorded for staff), so it is never acknowledged: not
    credited, published again on the ladder, each publication an attempt row."""
    stack = queue_stack()
    browser, cashier_url = browser_at_cashier(stack, customer, "5.00")
    recharge = Recharge.objects.get(account=customer.account)
    Recharge.objects.filter(pk=recharge.pk).update(amount=499)
    browser.finish(cashier_url, "pay")

    notification = wait_until(
        lambda: Notification.objects.filter(subject=recharge.tx_no, attempt_count__gte=3).first(),
        what="the refused notification published three times",
        stack=stack,
    )

    receipt = wait_until(
        lambda: InboundNotification.objects.filter(webhook_id=notification.webhook_id).first(),
        what="the rejection recorded",
        stack=stack,
    )
    assert receipt.outcome == "rejected"
    assert "amount" in receipt.reason
    assert not LedgerEntry.objects.exists()
    assert Recharge.objects.get(pk=recharge.pk).status == Recharge.Status.PENDING
    notification.refresh_from_db()
    assert notification.state != Delivered
    assert notification.attempts.count() >= 2
    assert not notification.attempts.filter(succeeded=True).exists()
    if broker_url_of(stack) == RABBITMQ_URL:  # RabbitMQ keeps the refused copies
        assert dead_letters(stack) >= 1


def broker_url_of(stack) -> str:
    return stack.env["CELERY_BROKER_URL"]


def dead_letters(stack) -> int:
    """Messages in accounts' dead-letter queue on RabbitMQ."""
    with Connection(broker_url_of(stack), connect_timeout=5) as connection:
        queue = f"{stack.namespace}.notify.accounts.dead"
        _, count, _ = connection.default_channel.queue_declare(queue, passive=True)
    return count
