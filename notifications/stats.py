"""Figures about delivery for people and for scrapers: the backlog, endpoints by health, and
attempts per hour (count, success rate, latency percentiles). Every figure is computed in the
database by a bounded, indexed query; nothing here loads rows into Python one by one.

Latency percentiles are estimated as Prometheus's ``histogram_quantile`` does: attempts are
counted per duration bucket (``LATENCY_BUCKETS_MS``, conditional counts in one query) and the
percentile interpolated linearly inside the bucket it falls in; one beyond the last bound is
reported as that bound.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q
from django.db.models.functions import TruncHour

from .models import DeliveryAttempt, Endpoint, Notification

State = Notification.State
# Upper bounds of the duration buckets, milliseconds: from a loopback answer (10 ms) to the
# attempt deadline (NOTIFY_ATTEMPT_DEADLINE, 10 s by default). The Prometheus histogram
# (notifications/metrics.py) uses the same bounds in seconds.
LATENCY_BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
# The backlog counts the undelivered states (``Notification.UNDELIVERED_STATES``): delivered
# rows are left out, their number grows with the table (retention bounds it) and the
# deliveries counter already says how many there were.


@dataclass(frozen=True)
class Backlog:
    """What waits: notifications by state (``Notification.UNDELIVERED_STATES``), how many
    are due now, and the age in seconds of the oldest due one (0 when none is due)."""

    by_state: dict[str, int]
    due: int
    oldest_due_age_seconds: float


@dataclass(frozen=True)
class Hour:
    """Attempts started in the hour from ``start``: how many, how many acknowledged, their
    success rate (0..1, None without attempts) and latency percentiles in milliseconds
    (``{50: ms, 95: ms, 99: ms}``, None without attempts)."""

    start: datetime
    attempts: int
    succeeded: int
    success_rate: float | None
    latency_ms: dict[int, float] | None


def notifications_backlog(*, now: datetime) -> Backlog:
    """The backlog at ``now`` (three index scans on ``(state, next_attempt_at)``)."""
    counts = dict(
        Notification.objects.filter(state__in=Notification.UNDELIVERED_STATES)
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    due = Notification.objects.filter(state=State.PENDING, next_attempt_at__lte=now)
    figures = due.aggregate(n=Count("pk"), oldest=Min("next_attempt_at"))
    oldest = figures["oldest"]
    return Backlog(
        by_state={state: counts.get(state, 0) for state in Notification.UNDELIVERED_STATES},
        due=figures["n"],
        oldest_due_age_seconds=(now - oldest).total_seconds() if oldest else 0.0,
    )


def endpoints_by_state() -> dict[str, int]:
    """``{state: endpoints in it}`` for every state of ``Endpoint.State`` (0 for none)."""
    counts = dict(
        Endpoint.objects.values_list("state").annotate(n=Count("pk")).values_list("state", "n")
    )
    return {state: counts.get(state, 0) for state in Endpoint.State.values}


def attempts_by_hour(*, now: datetime, hours: int) -> list[Hour]:
    """One ``Hour`` for each of the last ``hours`` whole hours up to the one ``now`` is in,
    oldest first (hours without attempts included), from one query over the attempts
    started since (indexed on ``started_at``)."""
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    buckets = {
        f"le_{bound}": Count("pk", filter=Q(duration_ms__lte=bound)) for bound in LATENCY_BUCKETS_MS
    }
    rows = (
        DeliveryAttempt.objects.filter(started_at__gte=first, started_at__lte=now)
        .annotate(hour=TruncHour("started_at"))
        .values("hour")
        .annotate(total=Count("pk"), ok=Count("pk", filter=Q(succeeded=True)), **buckets)
    )
    by_start = {row["hour"]: row for row in rows}
    return [
        _hour(first + timedelta(hours=i), by_start.get(first + timedelta(hours=i)))
        for i in range(hours)
    ]


def _hour(start: datetime, row: dict | None) -> Hour:
    if not row or not row["total"]:
        return Hour(start, 0, 0, None, None)
    cumulative = [row[f"le_{bound}"] for bound in LATENCY_BUCKETS_MS]
    latency = {q: latency_quantile(q / 100, cumulative, row["total"]) for q in (50, 95, 99)}
    return Hour(start, row["total"], row["ok"], row["ok"] / row["total"], latency)


def latency_quantile(q: float, cumulative: list[int], total: int) -> float:
    """The ``q``-quantile (0..1) in milliseconds of ``total`` durations of which
    ``cumulative[i]`` are at most ``LATENCY_BUCKETS_MS[i]``: linear within its bucket (the
    first bucket starts at 0); beyond the last bound, the last bound."""
    rank = q * total
    below, lower = 0, 0
    for count, upper in zip(cumulative, LATENCY_BUCKETS_MS, strict=True):
        if count >= rank and count > below:
            return lower + (upper - lower) * (rank - below) / (count - below)
        below, lower = count, upper
    return float(LATENCY_BUCKETS_MS[-1])
