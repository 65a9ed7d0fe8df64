"""Retention: the prune tasks of notifications (delivered notifications and their attempts)
and of accounts (notification receipts), what they delete and what they never touch, their
batches and time budget, and their beat entries."""

import json
import threading
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from accounts import tasks as accounts_tasks
from accounts.models import Account, InboundNotification, LedgerEntry, Recharge
from accounts.services import receipts_prune
from notifications import tasks as notifications_tasks
from notifications.models import DeliveryAttempt, Notification
from notifications.services import notification_resend, notifications_prune
from tests.conftest import sign
from tests.helpers import notification_payload
from tests.test_notify_api import notify

DAY = 86400
State = Notification.State
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def retention(settings):
    """Ten days of retention on both sides."""
    settings.NOTIFY_RETENTION = 10 * DAY
    settings.ACCOUNTS_RECEIPT_RETENTION = 10 * DAY
    return settings


def notification(*, state: str, age_days: float | None, attempts: int = 1) -> Notification:
    """A notification in ``state`` created 40 days ago, delivered ``age_days`` ago (None:
    not delivered), with ``attempts`` attempt rows."""
    now = timezone.now()
    created = now - timedelta(days=40)
    row = Notification.objects.create(
        id=uuid.uuid4(),
        sender_key="shop",
        subject=f"TX-{uuid.uuid4().hex[:8]}",
        event_type="recharge.succeeded",
        target_url="https://merchant.example/notify",
        body="{}",
        state=state,
        attempt_count=attempts,
        next_attempt_at=created,
        created_at=created,
        delivered_at=None if age_days is None else now - timedelta(days=age_days),
    )
    DeliveryAttempt.objects.bulk_create(
        DeliveryAttempt(
            notification=row,
            number=number,
            started_at=created,
            duration_ms=5,
            status_code=204 if number == attempts and state == State.DELIVERED else 503,
            succeeded=number == attempts and state == State.DELIVERED,
        )
        for number in range(1, attempts + 1)
    )
    return row


def remaining() -> set:
    return set(Notification.objects.values_list("pk", flat=True))


def test_prune_deletes_old_delivered_notifications_with_their_attempts_and_nothing_else():
    """Delivered more than NOTIFY_RETENTION ago: deleted with every attempt. Delivered more
    recently, and pending, sending or exhausted ones however old: kept with their attempts."""
    old = [notification(state=State.DELIVERED, age_days=11, attempts=3) for _ in range(2)]
    kept = [
        notification(state=State.DELIVERED, age_days=9),
        notification(state=State.PENDING, age_days=None, attempts=4),
        notification(state=State.SENDING, age_days=None, attempts=2),
        notification(state=State.EXHAUSTED, age_days=None, attempts=15),
    ]

    counts = notifications_prune(now=timezone.now(), batch_size=100, budget_seconds=10)

    assert counts == {"notifications": 2, "attempts": 6, "batches": 1, "more": False}
    assert remaining() == {row.pk for row in kept}
    assert not DeliveryAttempt.objects.filter(notification_id__in=[row.pk for row in old])
    assert DeliveryAttempt.objects.count() == 1 + 4 + 2 + 15


def test_prune_works_in_batches_until_none_is_left():
    """Five prunable rows in batches of two: three batches (the last one short), all gone."""
    for _ in range(5):
        notification(state=State.DELIVERED, age_days=20)

    counts = notifications_prune(now=timezone.now(), batch_size=2, budget_seconds=10)

    assert counts == {"notifications": 5, "attempts": 5, "batches": 3, "more": False}
    assert not remaining()


def test_prune_starts_no_batch_after_its_budget_and_says_more_is_left():
    """A spent budget: one batch is deleted, the oldest first, and the rest waits for the
    next run, which finishes the job."""
    rows = [notification(state=State.DELIVERED, age_days=20 + n) for n in range(5)]

    counts = notifications_prune(now=timezone.now(), batch_size=2, budget_seconds=0)

    assert counts == {"notifications": 2, "attempts": 2, "batches": 1, "more": True}
    assert remaining() == {row.pk for row in rows[:3]}  # the two oldest went first
    next_run = notifications_prune(now=timezone.now(), batch_size=10, budget_seconds=0)
    assert next_run["notifications"] == 3


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="SQLite has no row locks (SKIP LOCKED): one writer at a time, so no race to test",
)
@pytest.mark.django_db(transaction=True)
def test_prune_leaves_a_notification_a_resend_is_changing_with_its_attempts():
    """A resend (staff's or the portal's) holds the old delivered row when prune runs: prune
    skips it (SKIP LOCKED) rather than deleting it or its attempts under the resend, and once
    the resend commits the notification is pending again, no longer prunable."""
    row = notification(state=State.DELIVERED, age_days=30, attempts=3)
    holding, release = threading.Event(), threading.Event()

    def resend():
        try:
            with transaction.atomic():
                notification_resend(notification_id=row.pk)
                holding.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    resender = threading.Thread(target=resend)
    resender.start()
    assert holding.wait(timeout=30)
    counts = notifications_prune(now=timezone.now(), batch_size=10, budget_seconds=5)
    release.set()
    resender.join(timeout=30)

    assert counts["notifications"] == counts["attempts"] == 0
    assert Notification.objects.get(pk=row.pk).state == State.PENDING
    assert DeliveryAttempt.objects.filter(notification=row).count() == 3
    assert notifications_prune(now=timezone.now(), batch_size=10, budget_seconds=5) == {
        "notifications": 0,
        "attempts": 0,
        "batches": 1,
        "more": False,
    }


def test_prune_reads_the_retention_at_call_time(retention):
    """A longer NOTIFY_RETENTION keeps what a shorter one would have pruned."""
    row = notification(state=State.DELIVERED, age_days=11)
    retention.NOTIFY_RETENTION = 12 * DAY

    counts = notifications_prune(now=timezone.now(), batch_size=10, budget_seconds=1)

    assert counts["notifications"] == 0
    assert remaining() == {row.pk}


@pytest.mark.parametrize(
    ("task", "service", "prefix"),
    [
        (notifications_tasks.prune, "notifications.services.notifications_prune", "NOTIFY"),
        (accounts_tasks.prune_receipts, "accounts.services.receipts_prune", "ACCOUNTS"),
    ],
)
def test_prune_tasks_pass_the_settings(settings, task, service, prefix):
    """Each beat task prunes with its app's ``<APP>_PRUNE_BATCH`` and
    ``<APP>_PRUNE_BUDGET``."""
    setattr(settings, f"{prefix}_PRUNE_BATCH", 7)
    setattr(settings, f"{prefix}_PRUNE_BUDGET", 3.5)
    with mock.patch(service) as prune:
        task()

    assert prune.call_args.kwargs["batch_size"] == 7
    assert prune.call_args.kwargs["budget_seconds"] == 3.5


@pytest.mark.parametrize(
    ("task", "every"),
    [
        ("notifications.prune", "NOTIFY_PRUNE_INTERVAL"),
        ("accounts.prune_receipts", "ACCOUNTS_PRUNE_INTERVAL"),
    ],
)
def test_prune_tasks_have_beat_entries_on_the_periodic_queue(task, every):
    """Migrating creates each prune task's beat entry, every ``<APP>_PRUNE_INTERVAL`` seconds
    on the periodic queue, and the task is routed there."""
    entry = PeriodicTask.objects.get(task=task)

    assert entry.queue == "periodic" and entry.enabled
    assert entry.interval.every == round(getattr(settings, every))
    assert settings.CELERY_TASK_ROUTES[task] == {"queue": "periodic"}


# --- accounts: notification receipts -------------------------------------------------------


def receipt(*, age_days: float, webhook_id: str | None = None) -> InboundNotification:
    """A receipt last received ``age_days`` ago."""
    row = InboundNotification.objects.create(
        webhook_id=webhook_id or f"msg_{uuid.uuid4().hex}", outcome="applied", deliveries=1
    )
    received = timezone.now() - timedelta(days=age_days)
    InboundNotification.objects.filter(pk=row.pk).update(
        first_received_at=received, last_received_at=received
    )
    return row


def test_receipts_prune_deletes_old_receipts_only():
    """Receipts last received more than ACCOUNTS_RECEIPT_RETENTION ago are deleted, newer
    ones kept."""
    for _ in range(3):
        receipt(age_days=11)
    young = receipt(age_days=9)

    counts = receipts_prune(now=timezone.now(), batch_size=2, budget_seconds=10)

    assert counts == {"receipts": 3, "batches": 2, "more": False}
    assert list(InboundNotification.objects.values_list("pk", flat=True)) == [young.pk]


def test_receipts_prune_stops_at_its_budget():
    """A spent budget: one batch, and ``more`` says the rest is for the next run."""
    for _ in range(3):
        receipt(age_days=11)

    counts = receipts_prune(now=timezone.now(), batch_size=2, budget_seconds=0)

    assert counts == {"receipts": 2, "batches": 1, "more": True}
    assert InboundNotification.objects.count() == 1


def test_a_replay_after_its_receipt_was_pruned_credits_nothing_twice(
    client, recharge, fast_password_hashing
):
    """A notification applied, its receipt pruned (past retention), then the same webhook-id
    and body delivered again (a late staff resend): 200 "duplicate", the balance credited
    once, one ledger entry; the recharge, ledger and account outlive the prune."""
    webhook_id = "msg_" + uuid.uuid4().hex
    body = json.dumps(notification_payload(recharge, webhook_id=webhook_id))
    first = notify(client, body, sign(body, webhook_id=webhook_id))
    assert first.json()["outcome"] == "applied"

    later = timezone.now() + timedelta(days=11)
    assert receipts_prune(now=later, batch_size=100, budget_seconds=10)["receipts"] == 1
    assert not InboundNotification.objects.exists()

    replay = notify(client, body, sign(body, webhook_id=webhook_id))

    assert (replay.status_code, replay.json()["outcome"]) == (200, "duplicate")
    assert Account.objects.get(pk=recharge.account_id).balance == recharge.amount
    assert LedgerEntry.objects.filter(tx_no=recharge.tx_no).count() == 1
    assert Recharge.objects.get(pk=recharge.pk).status == Recharge.Status.SUCCEEDED
    assert InboundNotification.objects.get(webhook_id=webhook_id).outcome == "duplicate"
