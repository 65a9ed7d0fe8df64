"""Writes of the outbox: create, sweep, resend, prune; endpoints re-enabled and recovered.

The row is the source of truth: delivery (``notifications.delivery``) claims an attempt in
the database before sending it, and the broker only carries wake-ups, so a lost, duplicated
or redelivered message never loses a notification nor sends an attempt twice.
"""

import logging
import math
import uuid
from dataclasses import asdict
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from core.batches import batches_within_budget
from core.clock import database_now

from . import circuit, selectors
from .conf import notify_settings
from .delivery import next_state
from .endpoints import endpoint_id_for, notifications_adopt
from .envelope import envelope_body
from .models import DeliveryAttempt, Endpoint, Notification
from .queues import is_queue_target

logger = logging.getLogger(__name__)
State = Notification.State


def notification_create(
    *, sender_key: str, subject: str, event_type: str, target_url: str, data: dict
) -> Notification:
    """Record a notification in the caller's transaction (the outbox) and wake a worker for
    its first attempt once that transaction commits.

    The body is frozen here, ``data`` in the envelope (``notifications.envelope``), and sent
    unchanged on every attempt. ``data`` must be JSON-serialisable (money as int minor units).
    ``target_url`` is an http(s) URL, or ``queue://<name>`` to publish it for subscriber
    ``name`` instead (notifications/queues.py). Raises ``ValueError`` for any other.
    """
    now = database_now()  # falls due by the clock the claims use (core/clock.py)
    notification = Notification(
        id=uuid.uuid4(),
        sender_key=sender_key,
        subject=subject,
        event_type=event_type,
        target_url=target_url,
        endpoint_id=endpoint_id_for(sender_key=sender_key, url=target_url),
        created_at=now,
        next_attempt_at=now,
    )
    notification.body = envelope_body(
        webhook_id=notification.webhook_id, event_type=event_type, created_at=now, data=data
    )
    notification.save(force_insert=True)
    _wake_on_commit(notification.pk)
    return notification


def notifications_sweep() -> dict:
    """Beat: release orphaned claims, and wake workers while notifications are due.

    A claim older than ``NOTIFY_CLAIM_TIMEOUT`` lost its worker (killed mid-attempt): it is
    counted as a failed attempt and rescheduled. Rows written without an endpoint (by the
    previous release, during a rolling deploy) get theirs. Then one wake-up message is sent per
    ``NOTIFY_CLAIM_BATCH`` due notifications on endpoints that may be sent to, at most
    ``NOTIFY_SWEEP_WAKES``: this is what delivers a retry, and a notification whose own
    message was lost (broker flushed, process killed between commit and send). Safe from two
    beats at once: an extra wake-up only makes a worker look once more.
    Returns ``{"released": n, "wakes": n}``.
    """
    now = database_now()  # the claims' clock, not this host's (core/clock.py)
    notifications_adopt(limit=notify_settings.SWEEP_BATCH)
    orphans = selectors.notifications_orphaned(now=now)[: notify_settings.SWEEP_BATCH]
    released = sum(_release_orphan(notification, now) for notification in orphans)
    due = selectors.notifications_due_count(
        now=now, up_to=notify_settings.SWEEP_WAKES * notify_settings.CLAIM_BATCH
    )
    wakes = min(notify_settings.SWEEP_WAKES, math.ceil(due / notify_settings.CLAIM_BATCH))
    if wakes:
        from .tasks import dispatch

        for _ in range(wakes):
            dispatch.apply_async()
    return {"released": released, "wakes": wakes}


def notifications_prune(*, now: datetime, batch_size: int, budget_seconds: float) -> dict:
    """Beat: delete delivered notifications acknowledged more than ``NOTIFY_RETENTION``
    seconds before ``now``, with their attempts; never a pending, sending or exhausted one.

    Works in batches of at most ``batch_size`` notifications, oldest first, one transaction
    each (attempts deleted by notification id, then the notifications: no cascade over the
    whole table), and starts no new batch once ``budget_seconds`` have passed: what is left
    waits for the next run. Rows are locked with SKIP LOCKED and deleted only while still
    delivered, so a staff resend at the same moment either wins (the row stays) or finds the
    row gone. Returns ``{"notifications": n, "attempts": n, "batches": n, "more": bool}``,
    ``more`` true when the budget ran out before the last batch came back short.
    """
    delivered_before = now - timedelta(seconds=notify_settings.RETENTION)
    counts = batches_within_budget(
        delete_batch=lambda: _prune_batch(delivered_before, batch_size),
        budget_seconds=budget_seconds,
    )
    if counts["notifications"]:
        logger.info("pruned %(notifications)s notifications, %(attempts)s attempts", counts)
    return counts


def _prune_batch(delivered_before: datetime, batch_size: int) -> tuple[dict[str, int], bool]:
    """Delete one batch: the notifications and attempts deleted, and whether it was full."""
    with transaction.atomic():
        ids = list(
            selectors.notifications_prunable(delivered_before=delivered_before)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return {"notifications": 0, "attempts": 0}, False
        attempts, _ = DeliveryAttempt.objects.filter(notification_id__in=ids).delete()
        _, deleted = Notification.objects.filter(pk__in=ids, state=State.DELIVERED).delete()
    notifications = deleted.get(Notification._meta.label, 0)
    return {"notifications": notifications, "attempts": attempts}, notifications >= batch_size


def notification_resend(*, notification_id) -> bool:
    """Staff's "resend now": schedule one immediate attempt, whatever the state but sending.

    An exhausted notification gets exactly one more attempt; if it fails it is exhausted
    again. A delivered one is sent again (receivers apply idempotently). It goes when its
    endpoint may be sent to (not while its circuit is open or it is disabled). Returns False
    when an attempt is in flight.
    """
    now = timezone.now()
    with transaction.atomic():
        updated = (
            Notification.objects.filter(pk=notification_id)
            .exclude(state=State.SENDING)
            .update(state=State.PENDING, next_attempt_at=now)
        )
        if updated:
            _wake_on_commit(notification_id)
    return bool(updated)


def endpoint_enable(*, endpoint_id: int) -> Endpoint:
    """Staff's re-enable: the endpoint is healthy again (circuit closed, counts reset) and
    its due notifications go at once. Raises ``Endpoint.DoesNotExist``."""
    fields = {**asdict(circuit.reenabled()), "disabled_at": None}
    with transaction.atomic():
        Endpoint.objects.get(pk=endpoint_id)
        Endpoint.objects.filter(pk=endpoint_id).update(**fields)
        transaction.on_commit(_wake, robust=True)
    logger.info("endpoint %s re-enabled", endpoint_id)
    return Endpoint.objects.get(pk=endpoint_id)


def endpoint_recover(*, endpoint_id: int, since: datetime, until: datetime | None = None) -> int:
    """Re-enable the endpoint and resend every notification to it created since ``since``
    (and before ``until``) that it has not acknowledged: pending or exhausted, not one in
    flight (Svix's "recover"). Returns how many were rescheduled.
    Raises ``Endpoint.DoesNotExist``."""
    endpoint_enable(endpoint_id=endpoint_id)
    undelivered = selectors.notifications_undelivered(endpoint_id=endpoint_id).filter(
        created_at__gte=since
    )
    if until is not None:
        undelivered = undelivered.filter(created_at__lt=until)
    with transaction.atomic():
        # Locked in id order and skipping rows a claim holds (being sent right now), as every
        # other writer locks them: no deadlock with a worker claiming the same rows.
        ids = list(
            undelivered.exclude(state=State.SENDING)
            .order_by("pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        count = Notification.objects.filter(pk__in=ids).update(
            state=State.PENDING, next_attempt_at=timezone.now()
        )
        transaction.on_commit(_wake, robust=True)
    logger.info("endpoint %s recovered: %s notifications rescheduled", endpoint_id, count)
    return count


def _wake_on_commit(notification_id) -> None:
    from .tasks import deliver

    def enqueue_delivery():
        deliver.apply_async(args=(str(notification_id),))

    # robust: a broker that is down must not turn a committed payment into a 500; the row
    # is already in the outbox and the sweeper wakes a worker for it.
    # A function, not a functools.partial: Django logs a failed robust callback by its
    # __qualname__, which a partial lacks, and that AttributeError escaped as the 500
    # (make chaos, scenario 2b: Redis down while orders were paid).
    transaction.on_commit(enqueue_delivery, robust=True)


def _wake() -> None:
    from .tasks import dispatch

    dispatch.apply_async()


def _release_orphan(notification: Notification, now) -> int:
    """Count a claim whose worker died as a failed attempt and schedule the next one. Not
    the endpoint's failure: its health is left alone."""
    number = notification.attempt_count
    attempt = {
        "started_at": notification.claimed_at,
        "duration_ms": 0,
        "status_code": None,
        "response_excerpt": "",
        "error": "abandoned: no result recorded (worker lost)",
        "succeeded": False,
    }
    fields = next_state(
        created_at=notification.created_at,
        number=number,
        result=None,
        now=now,
        queue=is_queue_target(notification.target_url),
    )
    fields.update(last_status_code=None, last_error=attempt["error"])
    with transaction.atomic():
        # The row first, as a worker recording a late result locks it first (then inserts
        # its attempt row); skipped if that worker holds it now.
        claim = Notification.objects.filter(
            pk=notification.pk, state=State.SENDING, attempt_count=number
        )
        if not claim.select_for_update(skip_locked=True).values_list("pk", flat=True):
            return 0
        DeliveryAttempt.objects.get_or_create(
            notification=notification, number=number, defaults=attempt
        )
        return claim.update(**fields)


ACKNOWLEDGED = "acknowledged"


def notification_acknowledge(*, webhook_id: str, number: int) -> str:
    """Record a subscriber's acknowledgement of attempt ``number`` of a queue target's
    notification (scheme 1, ``notifications.publisher``): the attempt row succeeded
    (``response_excerpt`` "acknowledged"), the notification delivered unless it already is,
    from any state (an acknowledgement of an earlier publication still delivers, even after
    the window closed). Not the endpoint's health: queue targets have no circuit.

    Returns ``"delivered"``; ``"duplicate"`` when it already was (the attempt row is marked
    all the same); ``"unknown"`` for a notification this database does not have (pruned,
    or another deployment's: logged and dropped); ``"early"`` while attempt ``number`` is
    still claimed and unrecorded (the caller tries again shortly: recording it would
    overwrite the acknowledgement).
    """
    notification_id = selectors.notification_id_from_webhook_id(webhook_id)
    now = timezone.now()
    with transaction.atomic():
        # The row before its attempts, the order every writer locks them in.
        row = (
            Notification.objects.select_for_update()
            .filter(pk=notification_id)
            .values("state", "attempt_count")
            .first()
            if notification_id is not None
            else None
        )
        if row is None:
            logger.warning("acknowledgement of unknown notification %s dropped", webhook_id)
            return "unknown"
        if row["state"] == State.SENDING and row["attempt_count"] == number:
            return "early"
        DeliveryAttempt.objects.filter(notification_id=notification_id, number=number).update(
            succeeded=True, response_excerpt=ACKNOWLEDGED
        )
        if row["state"] == State.DELIVERED:
            return "duplicate"
        Notification.objects.filter(pk=notification_id).update(
            state=State.DELIVERED, delivered_at=now, last_error="", claimed_at=None
        )
    logger.info("notification %s acknowledged (attempt %s)", webhook_id, number)
    return "delivered"
