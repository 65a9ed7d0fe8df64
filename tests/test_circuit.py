"""An endpoint's circuit breaker (notifications/circuit.py): pure functions of its health."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from notifications import circuit
from notifications.circuit import CLOSED, DISABLED, HALF_OPEN, OPEN, Health

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def knobs(settings):
    settings.NOTIFY_CIRCUIT_FAILURES = 5
    settings.NOTIFY_CIRCUIT_FAILURE_RATE = 0.5
    settings.NOTIFY_CIRCUIT_MIN_ATTEMPTS = 20
    settings.NOTIFY_CIRCUIT_WINDOW = 60
    settings.NOTIFY_CIRCUIT_OPEN_FOR = 30
    settings.NOTIFY_CIRCUIT_OPEN_MAX = 600
    settings.NOTIFY_ENDPOINT_DISABLE_AFTER = 5 * 86400
    settings.NOTIFY_ENDPOINT_MAX_IN_FLIGHT = 16


def run(health: Health, outcomes: str, *, start=T0, step=timedelta(seconds=1)) -> Health:
    """Apply ``outcomes`` ("s" success, "f" failure), one per ``step``."""
    for number, outcome in enumerate(outcomes):
        health = circuit.after_attempt(health, succeeded=outcome == "s", now=start + number * step)
    return health


def test_opens_after_consecutive_failures_and_sends_nothing_while_open():
    """Four failures in a row leave it closed; the fifth opens it for 30 s: no request may
    be in flight until then."""
    assert run(Health(), "ffff").state == CLOSED

    health = run(Health(), "fffff")

    assert (health.state, health.retry_at) == (OPEN, T0 + timedelta(seconds=4 + 30))
    assert circuit.in_flight_cap(health, T0 + timedelta(seconds=10)) == 0


def test_a_success_resets_the_consecutive_count():
    assert run(Health(), "ffffsffff").state == CLOSED


def test_opens_on_the_failure_rate_over_the_window():
    """Alternating results never make five in a row, but a failure that makes it 50 % of 20
    attempts in a minute does; at fewer attempts than the minimum it does not."""
    assert run(Health(), "sf" * 9).state == CLOSED
    assert run(Health(), "sf" * 10).state == OPEN


def test_the_window_starts_again_after_it_ends():
    """Failures spread over more than the window do not add up."""
    health = run(Health(), "fs" * 9, step=timedelta(seconds=3))  # 54 s: still one window
    health = run(health, "fs", start=T0 + timedelta(seconds=61))  # a new window

    assert (health.state, health.window_attempts) == (CLOSED, 2)


def test_one_probe_after_the_wait_then_closed_on_success():
    """Once retry_at passes, one request may go (the probe) and the circuit is half-open;
    its success closes it and resets every count."""
    opened = run(Health(), "fffff")
    after_wait = opened.retry_at

    assert circuit.in_flight_cap(opened, after_wait) == 1
    probing = circuit.probing(opened, after_wait)
    assert probing.state == HALF_OPEN

    closed = circuit.after_attempt(probing, succeeded=True, now=after_wait)
    assert closed == replace(closed, state=CLOSED, consecutive_failures=0, opened_count=0)
    assert closed.failing_since is None and closed.retry_at is None
    assert circuit.in_flight_cap(closed, after_wait) == 16


def test_a_failed_probe_opens_it_for_twice_as_long_up_to_the_maximum():
    health, waits = run(Health(), "fffff"), []
    for _ in range(7):
        now = health.retry_at
        health = circuit.after_attempt(circuit.probing(health, now), succeeded=False, now=now)
        waits.append((health.retry_at - now).total_seconds())

    assert waits == [60, 120, 240, 480, 600, 600, 600]


def test_late_failures_while_open_do_not_lengthen_the_wait():
    """Requests sent before it opened fail afterwards: the wait stays as it was."""
    opened = run(Health(), "fffff")

    later = run(opened, "fffffff", start=T0 + timedelta(seconds=5))

    assert (later.state, later.retry_at, later.opened_count) == (OPEN, opened.retry_at, 1)


def test_disabled_after_failing_for_the_whole_period_and_stays_disabled():
    """No success for five days: disabled, nothing may be sent, a late success changes
    nothing (only staff re-enable)."""
    health = run(Health(), "f")
    health = circuit.after_attempt(health, succeeded=False, now=T0 + timedelta(days=4, hours=23))
    assert health.state != DISABLED

    health = circuit.after_attempt(health, succeeded=False, now=T0 + timedelta(days=5))

    assert health.state == DISABLED
    assert circuit.in_flight_cap(health, T0 + timedelta(days=6)) == 0
    assert circuit.after_attempt(health, succeeded=True, now=T0 + timedelta(days=6)) == health
    assert circuit.reenabled() == Health()


def test_closing_resets_the_failure_rate_window_too():
    """Opened on the rate, closed by a good probe: one failure a second later does not open
    it again (the window starts afresh)."""
    opened = run(Health(), "sf" * 10)
    closed = circuit.after_attempt(
        circuit.probing(opened, opened.retry_at), succeeded=True, now=opened.retry_at
    )

    later = circuit.after_attempt(closed, succeeded=False, now=opened.retry_at + timedelta(1))

    assert (closed.window_attempts, later.state, later.window_attempts) == (0, CLOSED, 1)
