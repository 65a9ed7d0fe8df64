"""Reads of the outbox, for the sweeper, the admin and other apps."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet

from .models import Notification


def notifications_due(*, now: datetime) -> QuerySet:
    """Pending notifications that are due and have no live task message in the broker.

    A message is presumed lost when it was expected to run more than ``NOTIFY_REQUEUE_AFTER``
    seconds ago (Redis flushed or restarted empty, the on-commit enqueue never happened).
    Ordered oldest-due first; uses the (state, next_attempt_at) index.
    """
    lost_before = now - timedelta(seconds=settings.NOTIFY_REQUEUE_AFTER)
    return Notification.objects.filter(
        Q(broker_eta__isnull=True) | Q(broker_eta__lte=lost_before),
        state=Notification.State.PENDING,
        next_attempt_at__lte=now,
    ).order_by("next_attempt_at")


def notifications_orphaned(*, now: datetime) -> QuerySet:
    """Attempts claimed more than ``NOTIFY_CLAIM_TIMEOUT`` seconds ago and never finished:
    the worker that claimed them died."""
    claimed_before = now - timedelta(seconds=settings.NOTIFY_CLAIM_TIMEOUT)
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
