"""The notifications app's Prometheus metrics: counters and a histogram updated where
attempts are recorded, and gauges computed from the database at scrape time.

- ``notifications_attempts_total{outcome, kind}``: attempts recorded; ``outcome`` is
  ``delivered``, ``failed`` or ``queued`` (published to a queue target, its acknowledgement
  awaited: notifications/publisher.py), ``kind`` what happened (``attempt_kind``).
- ``notifications_attempt_duration_seconds``: how long attempts took.
- ``notifications_backlog{state}``, ``notifications_due``,
  ``notifications_oldest_due_age_seconds``, ``notifications_endpoints{state}``: computed by
  ``NotificationsCollector`` from the database (notifications/stats.py).

Counters live in each process (the Celery worker's pool processes record attempts) and are
summed across processes by prometheus_client's multiprocess mode (config/settings/metrics.py).
"""

import logging
import threading
from collections.abc import Iterator

from django.db import DatabaseError
from django.utils import timezone
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from core.metrics import up_then_gauges

from . import stats

logger = logging.getLogger(__name__)

ATTEMPTS = Counter(
    "notifications_attempts_total",
    "Delivery attempts recorded, by outcome and what happened.",
    ["outcome", "kind"],
)

# Made on first use (``attempt_duration``), under a lock: gunicorn's threads may race to it.
_attempt_duration: Histogram | None = None
_attempt_duration_lock = threading.Lock()


def attempt_duration() -> Histogram:
    """``notifications_attempt_duration_seconds``, made on first use: in multiprocess mode a
    metric without labels writes its file as it is made, so one made at import would leave a
    file behind every process that imports this module (every manage.py command), all read
    by every scrape until the directory is emptied."""
    global _attempt_duration
    with _attempt_duration_lock:
        if _attempt_duration is None:
            _attempt_duration = Histogram(
                "notifications_attempt_duration_seconds",
                "Duration of delivery attempts, from the request's start to its end or deadline.",
                buckets=[bound / 1000 for bound in stats.LATENCY_BUCKETS_MS],
            )
        return _attempt_duration


# What an attempt's error text starts with (notifications/http.py, delivery.py) → its kind.
_ERROR_KINDS = (
    ("timeout", "timeout"),
    ("refused destination", "refused_destination"),
    ("connection error", "connect_error"),
    ("not sent: cannot sign", "unsigned"),
    ("not sent", "not_sent"),
    ("request error", "request_error"),
    ("broker", "broker_error"),
)


def attempt_kind(*, status_code: int | None, error: str) -> str:
    """What happened, in a few values: the HTTP status class (``2xx`` … ``5xx``) when a
    response came, else the error's kind (``timeout``, ``connect_error``,
    ``refused_destination`` by the SSRF guard, ``unsigned``, ``not_sent``,
    ``request_error``, ``broker_error`` for a queue target's failed publish), ``queued`` for
    a queue target's publish (no status, no error), else ``other``."""
    if status_code is not None:
        return f"{status_code // 100}xx"
    if not error:
        return "queued"
    for prefix, kind in _ERROR_KINDS:
        if error.startswith(prefix):
            return kind
    return "other"


def attempts_observe(results) -> None:
    """Count recorded attempts: ``results`` are ``(claimed, PostResult, started_at)``
    (``delivery.attempts_record``). Called once their batch has committed."""
    for _, result, _ in results:
        kind = attempt_kind(status_code=result.status_code, error=result.error)
        outcome = "delivered" if result.ok else "queued" if kind == "queued" else "failed"
        ATTEMPTS.labels(outcome, kind).inc()
        attempt_duration().observe(result.duration_ms / 1000)


class NotificationsCollector:
    """Gauges from the database, computed when scraped (``METRICS_COLLECTORS``). A database
    that does not answer leaves them out and sets ``notifications_database_up`` to 0 rather
    than failing the scrape."""

    def collect(self):
        yield from up_then_gauges(
            up=("notifications_database_up", "Whether the notification gauges could be read."),
            read=_read_database,
            errors=(DatabaseError,),
            log=lambda exc: logger.exception("metrics: cannot read the notification gauges"),
            gauges=_database_gauges,
        )


def _read_database():
    return stats.notifications_backlog(now=timezone.now()), stats.endpoints_by_state()


def _database_gauges(read: tuple) -> Iterator[GaugeMetricFamily]:
    backlog, endpoints = read
    by_state = GaugeMetricFamily(
        "notifications_backlog", "Notifications not delivered, by state.", labels=["state"]
    )
    for state, count in backlog.by_state.items():
        by_state.add_metric([state], count)
    yield by_state
    yield GaugeMetricFamily("notifications_due", "Pending notifications due now.", backlog.due)
    yield GaugeMetricFamily(
        "notifications_oldest_due_age_seconds",
        "How long the oldest due notification has been due (0: none is).",
        backlog.oldest_due_age_seconds,
    )
    health = GaugeMetricFamily(
        "notifications_endpoints", "Endpoints by circuit state.", labels=["state"]
    )
    for state, count in endpoints.items():
        health.add_metric([state], count)
    yield health
