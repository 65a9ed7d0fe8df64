"""Writes of the outbox: create, deliver one attempt, sweep, resend.

The row is the source of truth. An attempt is claimed by a conditional UPDATE before any
HTTP is sent, so a duplicated or redelivered task message finds nothing to do; results are
recorded under a guard on the attempt number, so a claim that was given up on cannot
overwrite a newer one.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from . import http, selectors, signing
from .conf import notify_settings
from .envelope import envelope_body
from .models import DeliveryAttempt, Notification
from .retry import schedule_from_settings
from .secrets import sender_secrets

logger = logging.getLogger(__name__)
State = Notification.State


@dataclass(frozen=True)
class DeliveryOutcome:
    """Result of one ``notification_deliver`` call.

    ``attempted`` is False when there was nothing to claim; ``retry_in`` (seconds) is set when
    the next attempt is short enough to be a Celery countdown, else the sweeper sends it.
    """

    attempted: bool
    state: str | None = None
    retry_in: float | None = None


def notification_create(
    *, sender_key: str, subject: str, event_type: str, target_url: str, data: dict
) -> Notification:
    """Record a notification in the caller's transaction (the outbox) and enqueue its first
    attempt once that transaction commits.

    The body is frozen here, ``data`` in the envelope (``notifications.envelope``), and sent
    unchanged on every attempt. ``data`` must be JSON-serialisable (money as int minor units).
    """
    now = timezone.now()
    notification = Notification(
        id=uuid.uuid4(),
        sender_key=sender_key,
        subject=subject,
        event_type=event_type,
        target_url=target_url,
        created_at=now,
        next_attempt_at=now,
        # The on-commit enqueue below is the expected message; if the process dies before
        # it is sent, the sweeper re-sends once NOTIFY_REQUEUE_AFTER has passed.
        broker_eta=now,
    )
    notification.body = envelope_body(
        webhook_id=notification.webhook_id, event_type=event_type, created_at=now, data=data
    )
    notification.save(force_insert=True)
    _enqueue_on_commit(notification.pk)
    return notification


def notification_deliver(*, notification_id) -> DeliveryOutcome:
    """Make the next delivery attempt of a notification, if it is due and unclaimed.

    Claims the attempt, POSTs the frozen body signed with a fresh timestamp, records a
    ``DeliveryAttempt`` and moves the notification to delivered, pending (with the next
    ``next_attempt_at`` from the retry schedule) or exhausted.
    """
    notification = _claim(notification_id)
    if notification is None:
        _warn_if_unknown(notification_id)
        return DeliveryOutcome(attempted=False)
    number = notification.attempt_count
    started_at = timezone.now()
    result = http.post(
        notification.target_url,
        body=notification.body.encode(),
        headers=_headers(notification, started_at),
        timeout=(notify_settings.CONNECT_TIMEOUT, notify_settings.READ_TIMEOUT),
        excerpt_bytes=notify_settings.RESPONSE_EXCERPT_BYTES,
    )
    attempt = {
        "started_at": started_at,
        "duration_ms": result.duration_ms,
        "status_code": result.status_code,
        "response_excerpt": result.excerpt,
        "error": result.error,
        "succeeded": result.ok,
    }
    return _record(notification, number, attempt)


def notifications_sweep() -> dict:
    """Release orphaned claims and re-send every due notification with no live message.

    Safe to run from two beats at once: rows are taken with ``SKIP LOCKED`` (PostgreSQL) or
    under SQLite's write lock, and a second message for a row is harmless (claims).
    Sends at most ``NOTIFY_SWEEP_BATCH`` less what already waits in the deliveries' queue, so
    however many notifications are due (a receiver back after an outage) the broker holds a
    bounded number of messages and the rest wait in the database.
    Returns ``{"released": n, "enqueued": n}``.
    """
    now = timezone.now()
    released = 0
    for notification in selectors.notifications_orphaned(now=now)[: notify_settings.SWEEP_BATCH]:
        released += _release_orphan(notification, now)
    room = notify_settings.SWEEP_BATCH - _queued_deliveries()
    if room <= 0:
        return {"released": released, "enqueued": 0}
    with transaction.atomic():
        due = selectors.notifications_due(now=now).select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:room])
        Notification.objects.filter(pk__in=ids).update(broker_eta=now)
        for notification_id in ids:
            _enqueue_on_commit(notification_id)
    return {"released": released, "enqueued": len(ids)}


def notification_resend(*, notification_id) -> bool:
    """Staff's "resend now": schedule one immediate attempt, whatever the state but sending.

    An exhausted notification gets exactly one more attempt; if it fails it is exhausted
    again. A delivered one is sent again (receivers apply idempotently). Returns False when
    an attempt is in flight.
    """
    now = timezone.now()
    with transaction.atomic():
        updated = (
            Notification.objects.filter(pk=notification_id)
            .exclude(state=State.SENDING)
            .update(state=State.PENDING, next_attempt_at=now, broker_eta=now)
        )
        if updated:
            _enqueue_on_commit(notification_id)
    return bool(updated)


def _queued_deliveries() -> int:
    """Messages waiting in the deliveries' queue; 0 when the broker cannot say (the sweep
    then sends a full batch, as it would without this check)."""
    from kombu.exceptions import ChannelError

    from .tasks import deliver

    app = deliver.app
    queue = (app.conf.task_routes or {}).get(deliver.name, {}).get("queue")
    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1)
            return connection.default_channel.queue_declare(
                queue=queue or app.conf.task_default_queue, passive=True
            ).message_count
    except ChannelError:  # Redis: an empty queue is no key at all
        return 0
    except Exception as exc:  # broker down: the enqueue below is robust anyway
        logger.warning("sweep: cannot read the deliveries queue length: %s", exc)
        return 0


def _warn_if_unknown(notification_id) -> None:
    """Say loudly when a delivery names a notification this database does not have: nothing
    here ever deletes an undelivered one, so the message came from another deployment sharing
    the broker, whose own notification now waits for its sweeper."""
    if not Notification.objects.filter(pk=notification_id).exists():
        logger.error(
            "delivery task for notification %s, which this database does not have: another "
            "deployment's message? Give each deployment its own DEPLOYMENT_NAMESPACE "
            "(README 'Scaling out').",
            notification_id,
        )


def _enqueue_on_commit(notification_id) -> None:
    from .tasks import deliver

    def enqueue_delivery():
        deliver.apply_async(args=(str(notification_id),))

    # robust: a broker that is down must not turn a committed payment into a 500; the row
    # is already in the outbox and the sweeper sends it once NOTIFY_REQUEUE_AFTER has passed.
    # A function, not a functools.partial: Django logs a failed robust callback by its
    # __qualname__, which a partial lacks, and that AttributeError escaped as the 500
    # (make chaos, scenario 2b: Redis down while orders were paid).
    transaction.on_commit(enqueue_delivery, robust=True)


def _headers(notification: Notification, timestamp: datetime) -> dict[str, str]:
    return signing.signed_headers(
        webhook_id=notification.webhook_id,
        body=notification.body,
        secrets=sender_secrets(notification.sender_key),
        timestamp=timestamp,
    )


def _claim(notification_id) -> Notification | None:
    """Take the next attempt of a due, pending notification: the claimed row (its
    ``attempt_count`` is the attempt's number), or None.

    One ``UPDATE … WHERE state = pending AND next_attempt_at <= now RETURNING *``
    (PostgreSQL; SQLite 3.35+), atomic on its own: no explicit transaction, so on SQLite the
    write lock is held for that statement only, and one round trip instead of an update and
    a read (bench "sender throughput"). Once the row is ``sending`` nothing else changes it
    (resend skips it; the sweeper releases it only after NOTIFY_CLAIM_TIMEOUT).
    """
    now = timezone.now()
    meta = Notification._meta
    quote = connection.ops.quote_name

    def prep(name, value):
        return meta.get_field(name).get_db_prep_value(value, connection)

    count = quote("attempt_count")
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {quote('state')} = %s, {quote('claimed_at')} = %s, "
        f"{quote('broker_eta')} = NULL, {count} = {count} + 1 "
        f"WHERE {quote('id')} = %s AND {quote('state')} = %s AND {quote('next_attempt_at')} <= %s "
        f"RETURNING {', '.join(quote(field.column) for field in meta.concrete_fields)}"
    )
    params = [
        State.SENDING,
        prep("claimed_at", now),
        prep("id", notification_id),
        State.PENDING,
        prep("next_attempt_at", now),
    ]
    # raw() maps the returned columns onto a Notification, with the backend's converters
    # (SQLite keeps UUIDs and datetimes as text).
    claimed = list(Notification.objects.raw(sql, params, using=connection.alias))
    return claimed[0] if claimed else None


def _record(notification: Notification, number: int, attempt: dict) -> DeliveryOutcome:
    """Store attempt ``number`` and move the notification on, unless its claim was lost."""
    now = timezone.now()
    fields = _next_state(notification, number, attempt["succeeded"], now)
    fields.update(last_status_code=attempt["status_code"], last_error=attempt["error"])
    with transaction.atomic():
        # One INSERT … ON CONFLICT DO UPDATE: attempt ``number`` may already have a row if
        # its claim was released as orphaned meanwhile; the real result replaces it.
        DeliveryAttempt.objects.bulk_create(
            [DeliveryAttempt(notification=notification, number=number, **attempt)],
            update_conflicts=True,
            unique_fields=["notification", "number"],
            update_fields=list(attempt),
        )
        still_ours = Notification.objects.filter(
            pk=notification.pk, attempt_count=number, state__in=[State.SENDING, State.PENDING]
        ).update(**fields)
    if not still_ours:
        logger.warning(
            "attempt %s of %s finished after its claim was released", number, notification.pk
        )
        return DeliveryOutcome(attempted=True)
    retry_in = None
    if fields["state"] == State.PENDING and fields["broker_eta"] is not None:
        retry_in = max(0.0, (fields["next_attempt_at"] - now).total_seconds())
    return DeliveryOutcome(attempted=True, state=fields["state"], retry_in=retry_in)


def _next_state(notification: Notification, number: int, succeeded: bool, now) -> dict:
    """The row's new fields after attempt ``number``: delivered, retry scheduled, exhausted."""
    if succeeded:
        return {"state": State.DELIVERED, "delivered_at": now, "claimed_at": None}
    due = schedule_from_settings().next_attempt_at(
        attempts_made=number, created_at=notification.created_at, now=now
    )
    if due is None:
        return {"state": State.EXHAUSTED, "claimed_at": None}
    short = (due - now).total_seconds() <= notify_settings.COUNTDOWN_CAP
    return {
        "state": State.PENDING,
        "next_attempt_at": due,
        # A short delay travels as a countdown message; a long one waits for the sweeper.
        "broker_eta": due if short else None,
        "claimed_at": None,
    }


def _release_orphan(notification: Notification, now) -> int:
    """Count a claim whose worker died as a failed attempt and schedule the next one."""
    number = notification.attempt_count
    attempt = {
        "started_at": notification.claimed_at,
        "duration_ms": 0,
        "status_code": None,
        "response_excerpt": "",
        "error": "abandoned: no result recorded (worker lost)",
        "succeeded": False,
    }
    fields = _next_state(notification, number, False, now)
    fields.update(broker_eta=None, last_status_code=None, last_error=attempt["error"])
    with transaction.atomic():
        released = Notification.objects.filter(
            pk=notification.pk, state=State.SENDING, attempt_count=number
        ).update(**fields)
        if released:
            DeliveryAttempt.objects.get_or_create(
                notification=notification, number=number, defaults=attempt
            )
    return released
