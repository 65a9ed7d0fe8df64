"""Reads of the outbox, for the sweeper, the admin and other apps."""

from datetime import datetime, timedelta

from django.db.models import Q, QuerySet, Subquery

from .conf import notify_settings
from .models import Notification


def notifications_due(*, now: datetime) -> QuerySet:
    """Pending notifications that are due and have no live task message in the broker.

    A message is presumed lost when it was expected to run more than ``NOTIFY_REQUEUE_AFTER``
    seconds ago (Redis flushed or restarted empty, the on-commit enqueue never happened).
    Ordered oldest-due first; uses the (state, next_attempt_at) index.
    """
    lost_before = now - timedelta(seconds=notify_settings.REQUEUE_AFTER)
    return Notification.objects.filter(
        Q(broker_eta__isnull=True) | Q(broker_eta__lte=lost_before),
        state=Notification.State.PENDING,
        next_attempt_at__lte=now,
    ).order_by("next_attempt_at")


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
