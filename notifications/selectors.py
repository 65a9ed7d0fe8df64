"""Reads of the outbox, for the sweeper, the admin and other apps."""

import re
import uuid
from datetime import datetime, timedelta

from django.db.models import Count, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from core.search import MATCHES_PER_SEARCHER, Match

from .conf import notify_settings
from .models import Endpoint, Notification
from .queues import SCHEME as QUEUE_SCHEME

_WEBHOOK_ID = re.compile(r"msg_([0-9a-fA-F]{32})")


def notifications_due_count(*, now: datetime, up_to: int) -> int:
    """How many pending notifications are due on endpoints that may be sent to now (closed,
    or open past their wait), counting no further than ``up_to``."""
    serveable = Q(endpoint__state=Endpoint.State.CLOSED) | Q(
        endpoint__state__in=[Endpoint.State.OPEN, Endpoint.State.HALF_OPEN],
        endpoint__retry_at__lte=now,
    )
    due = Notification.objects.filter(
        serveable, state=Notification.State.PENDING, next_attempt_at__lte=now
    )
    return len(due.values_list("pk", flat=True)[:up_to])


def queue_endpoints_exist() -> bool:
    """Whether any notification was ever meant for a queue target (``queue://<name>``): then
    a worker process reads acknowledgements from its start (notifications/dispatcher.py)."""
    return Endpoint.objects.filter(origin__startswith=QUEUE_SCHEME).exists()


def notifications_orphaned(*, now: datetime) -> QuerySet:
    """Attempts claimed more than ``NOTIFY_CLAIM_TIMEOUT`` seconds ago and never finished:
    the worker that claimed them died."""
    claimed_before = now - timedelta(seconds=notify_settings.CLAIM_TIMEOUT)
    return Notification.objects.filter(
        state=Notification.State.SENDING, claimed_at__lte=claimed_before
    )


def notifications_for_subject(*, subject: str) -> QuerySet:
    """Every notification about ``subject`` (e.g. a tx_no), newest first, attempts prefetched."""
    return (
        Notification.objects.filter(subject=subject)
        .prefetch_related("attempts")
        .order_by("-created_at")
    )


def notification_subjects(*, states: list[str]) -> QuerySet:
    """The subjects of notifications in ``states``, as a subquery for ``__in`` filters."""
    return Notification.objects.filter(state__in=states).values("subject")


def notification_subjects_undelivered() -> QuerySet:
    """Subjects with a notification the receiver has not acknowledged: pending, being sent
    or exhausted. A subquery for ``__in`` filters."""
    return notification_subjects(
        states=[state for state in Notification.State if state != Notification.State.DELIVERED]
    )


def notification_subjects_exhausted() -> QuerySet:
    """Subjects with a notification whose retry window closed unacknowledged (staff's turn)."""
    return notification_subjects(states=[Notification.State.EXHAUSTED])


def notification_latest_state(*, subject) -> Subquery:
    """The state of the newest notification about ``subject`` (e.g. ``OuterRef("tx_no")``).

    An expression for another app's ``annotate()``: it shows delivery state in a list
    without a query per row and without importing this app's models.
    """
    newest = Notification.objects.filter(subject=subject).order_by("-created_at")
    return Subquery(newest.values("state")[:1])


def notifications_undelivered(*, endpoint_id: int | None = None) -> QuerySet:
    """Notifications the receiver has not acknowledged (pending, in flight or exhausted),
    oldest first; of one endpoint when ``endpoint_id`` is given."""
    undelivered = Notification.objects.filter(state__in=Notification.UNDELIVERED_STATES)
    if endpoint_id is not None:
        undelivered = undelivered.filter(endpoint_id=endpoint_id)
    return undelivered.order_by("created_at")


def endpoints_undelivered_report() -> QuerySet:
    """Every endpoint with undelivered notifications, the most first: its health, and how
    many it has pending, in flight and exhausted, with the oldest one's creation time. Reads
    only the undelivered rows (the join is filtered before it is counted)."""

    def counted(state):
        return Count("notifications", filter=Q(notifications__state=state))

    return (
        Endpoint.objects.filter(notifications__state__in=Notification.UNDELIVERED_STATES)
        .annotate(
            undelivered=Count("notifications"),
            pending=counted(Notification.State.PENDING),
            sending=counted(Notification.State.SENDING),
            exhausted=counted(Notification.State.EXHAUSTED),
            oldest=Min("notifications__created_at"),
        )
        .order_by("-undelivered", "origin")
    )


def endpoints_with_undelivered(endpoints: QuerySet) -> QuerySet:
    """``endpoints``, each with ``undelivered``: how many of its notifications the receiver
    has not acknowledged, counted through the (endpoint, state, …) index, so an endpoint's
    delivered history is never read."""
    counts = (
        notifications_undelivered()
        .filter(endpoint=OuterRef("pk"))
        .order_by()
        .values("endpoint")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return endpoints.annotate(undelivered=Coalesce(Subquery(counts), 0))


def endpoints_for_sender(*, sender_key: str) -> QuerySet:
    """Every endpoint of one sender, by origin, each with ``undelivered``: how many of its
    notifications the receiver has not acknowledged (pending, in flight or exhausted)."""
    return endpoints_with_undelivered(Endpoint.objects.filter(sender_key=sender_key)).order_by(
        "origin"
    )


def endpoint_success_rate(endpoint: Endpoint) -> float | None:
    """The share of the endpoint's attempts that succeeded, 0.0 to 1.0, over its lifetime;
    None before its first attempt."""
    if not endpoint.attempts_total:
        return None
    return 1 - endpoint.failures_total / endpoint.attempts_total


def endpoint_recent_success_rate(endpoint: Endpoint) -> float | None:
    """The share that succeeded of the attempts in the endpoint's latest circuit window
    (``NOTIFY_CIRCUIT_WINDOW`` seconds from ``window_started_at``), 0.0 to 1.0: how it is
    doing lately, where the lifetime rate still carries an outage it recovered from. None
    before its first attempt."""
    if not endpoint.window_attempts:
        return None
    return 1 - endpoint.window_failures / endpoint.window_attempts


def notification_subject_for_webhook_id(*, webhook_id: str, sender_key: str) -> str | None:
    """The subject of the sender's notification whose ``webhook-id`` is ``webhook_id``
    (``msg_`` and 32 hex digits, as a receiver logs it), or None: another sender's, unknown,
    or not a webhook-id at all."""
    notification_id = notification_id_from_webhook_id(webhook_id)
    if notification_id is None:
        return None
    found = Notification.objects.filter(pk=notification_id, sender_key=sender_key)
    return found.values_list("subject", flat=True).first()


def notifications_prunable(*, delivered_before: datetime) -> QuerySet:
    """Delivered notifications acknowledged before ``delivered_before``, oldest first: what
    retention may delete. Never a pending, sending or exhausted one. A range of the
    (state, delivered_at) index, so taking the first N costs the same at any table size."""
    return Notification.objects.filter(
        state=Notification.State.DELIVERED, delivered_at__lt=delivered_before
    ).order_by("delivered_at")


def notifications_search(*, term: str) -> list[Match]:
    """Staff's Find (``core.search``): the notification whose webhook-id is ``term``
    (``msg_<32 hex>``, as the merchant quotes it from the request headers), else those whose
    subject is ``term`` (for payments: a tx_no), newest first. Each leads to its subject."""
    notification_id = notification_id_from_webhook_id(term)
    if notification_id is not None:
        found, via = Notification.objects.filter(pk=notification_id), "webhook-id"
    else:
        found, via = Notification.objects.filter(subject=term), "subject"
    found = found.order_by("-created_at")[:MATCHES_PER_SEARCHER]
    return [Match(notification, via, (notification.subject,)) for notification in found]


def notification_id_from_webhook_id(webhook_id: str) -> uuid.UUID | None:
    """The notification id inside a webhook-id (``msg_<32 hex>``, ``Notification.webhook_id``),
    or None when ``webhook_id`` is not one."""
    match = _WEBHOOK_ID.fullmatch(webhook_id)
    return uuid.UUID(hex=match[1]) if match else None
