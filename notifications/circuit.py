"""An endpoint's health after each attempt: the circuit breaker, as pure functions.

The rules (Convoy ``pkg/circuit_breaker``, Svix ``worker.rs``; knobs in notifications/conf.py):

- closed → open after ``CIRCUIT_FAILURES`` consecutive failures, or when at least
  ``CIRCUIT_MIN_ATTEMPTS`` attempts in the current ``CIRCUIT_WINDOW`` seconds failed at a rate
  of ``CIRCUIT_FAILURE_RATE`` or more. While open nothing is sent to the endpoint.
- open → half-open once ``retry_at`` passes: exactly one request (the probe) may be in flight.
  Each time the circuit opens again without having closed, it stays open twice as long,
  from ``CIRCUIT_OPEN_FOR`` up to ``CIRCUIT_OPEN_MAX`` seconds.
- half-open → closed on the probe's success (every count reset), → open on its failure.
- any state → disabled after failing continuously (no success at all) for
  ``ENDPOINT_DISABLE_AFTER`` seconds (Svix's 5 days): nothing is sent until staff re-enable.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from .conf import notify_settings

CLOSED, OPEN, HALF_OPEN, DISABLED = "closed", "open", "half_open", "disabled"


@dataclass(frozen=True)
class Health:
    """The fields of an ``Endpoint`` this module reads and writes (same names)."""

    state: str = CLOSED
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    opened_count: int = 0
    retry_at: datetime | None = None
    window_started_at: datetime | None = None
    window_attempts: int = 0
    window_failures: int = 0


def after_attempt(health: Health, *, succeeded: bool, now: datetime) -> Health:
    """The health after one attempt that ended at ``now``. A disabled endpoint stays
    disabled (only staff re-enable it; attempts already in flight do not)."""
    if health.state == DISABLED:
        return health
    if succeeded and health.state != CLOSED:  # a probe (or a late request) came back fine
        return Health()
    health = _counted(health, succeeded=succeeded, now=now)
    if succeeded:
        return replace(health, consecutive_failures=0, failing_since=None)
    health = replace(
        health,
        consecutive_failures=health.consecutive_failures + 1,
        failing_since=health.failing_since or now,
    )
    disable_after = timedelta(seconds=notify_settings.ENDPOINT_DISABLE_AFTER)
    if now - health.failing_since >= disable_after:
        return replace(health, state=DISABLED, retry_at=None)
    # A failed probe opens it again; so does a closed circuit crossing a threshold. Late
    # results of requests sent before it opened change nothing more (no longer wait).
    if health.state == HALF_OPEN or (health.state == CLOSED and _should_open(health)):
        return _opened(health, now)
    return health


def is_open_at(health: Health, now: datetime) -> bool:
    """True while nothing at all may be sent: open before ``retry_at``, or disabled."""
    if health.state == DISABLED:
        return True
    return health.state == OPEN and health.retry_at is not None and health.retry_at > now


def in_flight_cap(health: Health, now: datetime) -> int:
    """How many requests the endpoint may have in flight at ``now``: none while open or
    disabled, one probe once an open circuit's wait is over (or while half-open), else
    ``ENDPOINT_MAX_IN_FLIGHT``."""
    if is_open_at(health, now):
        return 0
    if health.state in (OPEN, HALF_OPEN):
        return 1
    return notify_settings.ENDPOINT_MAX_IN_FLIGHT


def probing(health: Health, now: datetime) -> Health:
    """The health once a probe is claimed: an open circuit whose wait is over is half-open."""
    if health.state == OPEN and not is_open_at(health, now):
        return replace(health, state=HALF_OPEN)
    return health


def reenabled() -> Health:
    """Staff's re-enable: healthy again, every count reset."""
    return Health()


def _counted(health: Health, *, succeeded: bool, now: datetime) -> Health:
    """The attempt counted in the current window (a new window once the last one ended)."""
    window = timedelta(seconds=notify_settings.CIRCUIT_WINDOW)
    if health.window_started_at is None or now - health.window_started_at >= window:
        health = replace(health, window_started_at=now, window_attempts=0, window_failures=0)
    return replace(
        health,
        window_attempts=health.window_attempts + 1,
        window_failures=health.window_failures + (not succeeded),
    )


def _should_open(health: Health) -> bool:
    if health.consecutive_failures >= notify_settings.CIRCUIT_FAILURES:
        return True
    return (
        health.window_attempts >= notify_settings.CIRCUIT_MIN_ATTEMPTS
        and health.window_failures >= notify_settings.CIRCUIT_FAILURE_RATE * health.window_attempts
    )


def _opened(health: Health, now: datetime) -> Health:
    wait = min(
        notify_settings.CIRCUIT_OPEN_FOR * 2**health.opened_count, notify_settings.CIRCUIT_OPEN_MAX
    )
    return replace(
        health,
        state=OPEN,
        opened_count=health.opened_count + 1,
        retry_at=now + timedelta(seconds=wait),
    )
