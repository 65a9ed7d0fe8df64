"""The retry schedule (notifications/retry.py): ladders, windows, time scale and jitter."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from notifications.retry import (
    RetrySchedule,
    exponential_ladder,
    parse_duration,
    schedule_from_settings,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
WECHAT_DELAYS = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600)
WECHAT_DELAYS += (21600,)


@pytest.fixture
def retry_settings(settings):
    """Default schedule settings with jitter off, so every delay is exact."""
    settings.NOTIFY_RETRY_SCHEDULE = "exponential"
    settings.NOTIFY_RETRY_WINDOW = None
    settings.NOTIFY_TIME_SCALE = 1.0
    settings.NOTIFY_RETRY_JITTER = 0.0
    return settings


def walk(schedule, *, latency=0.0):
    """Follow ``schedule`` from T0, every attempt failing and taking ``latency`` seconds.

    Returns the delays (seconds) between one attempt's end and the next attempt's due time;
    its length is the number of retries, so attempts = len + 1.
    """
    delays, now, attempts = [], T0 + timedelta(seconds=latency), 1
    while due := schedule.next_attempt_at(attempts_made=attempts, created_at=T0, now=now):
        delays.append((due - now).total_seconds())
        now, attempts = due + timedelta(seconds=latency), attempts + 1
    return delays


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15),
        ("3m", 180),
        ("1.5h", 5400),
        ("250ms", 0.25),
        ("1d", 86400),
        (" 2 m ", 120),
        ("0s", 0),
    ],
)
def test_parse_duration_accepts_number_and_unit(text, seconds):
    """A number with one of ms/s/m/h/d becomes seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "s", "-5s", "15x", "1,5h", "15 s s", "1e3s", "3M"])
def test_parse_duration_refuses_anything_else(text):
    """A missing or unknown unit, a sign or an exponent raises ValueError naming the text."""
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_exponential_ladder_doubles_up_to_the_cap():
    """``base * factor**n`` for each retry, never above ``cap``."""
    assert exponential_ladder(base=10, factor=3, cap=200, retries=5) == (10, 30, 90, 200, 200)


def test_default_schedule_is_exponential_fifteen_attempts_within_a_day(retry_settings):
    """ "exponential": 14 retries (15 attempts) from 15 s doubling to a 4 h cap, 24 h window."""
    schedule = schedule_from_settings()

    assert schedule.delays == (15, 30, 60, 120, 240, 480, 960, 1920, 3840, 7680) + (14400,) * 4
    assert schedule.window == 86400
    assert walk(schedule) == list(schedule.delays)
    assert sum(schedule.delays) == 72945  # about 20 h of retries, inside the window


def test_wechat_ladder_is_wechat_pays_documented_schedule(retry_settings):
    """ "wechat": 15s,15s,30s,3m,10m,20m,30m,30m,30m,60m,3h,3h,3h,6h,6h (24h4m), window 27 h."""
    retry_settings.NOTIFY_RETRY_SCHEDULE = "wechat"
    schedule = schedule_from_settings()

    assert schedule.delays == WECHAT_DELAYS
    assert sum(schedule.delays) == 24 * 3600 + 4 * 60
    assert schedule.window == 27 * 3600
    assert walk(schedule) == list(WECHAT_DELAYS)


class _Highest:
    """An rng whose every draw is the top of the range: the worst case for the window."""

    def uniform(self, low, high):
        return high


def test_wechat_window_keeps_the_last_step_under_maximum_jitter(retry_settings):
    """With +10 % jitter on every step (and 1 s per attempt) all 16 attempts still happen."""
    retry_settings.NOTIFY_RETRY_SCHEDULE = "wechat"
    retry_settings.NOTIFY_RETRY_JITTER = 0.1
    schedule = schedule_from_settings()
    now, attempts = T0, 1
    while due := schedule.next_attempt_at(
        attempts_made=attempts, created_at=T0, now=now, rng=_Highest()
    ):
        now, attempts = due + timedelta(seconds=1), attempts + 1
    assert attempts == len(WECHAT_DELAYS) + 1


def test_explicit_ladder_is_taken_step_by_step(retry_settings):
    """An explicit ladder gives exactly its steps, then the notification is exhausted."""
    retry_settings.NOTIFY_RETRY_SCHEDULE = "15s, 30s,3m,1h"
    schedule = schedule_from_settings()

    assert schedule.delays == (15, 30, 180, 3600)
    assert walk(schedule) == [15, 30, 180, 3600]


def test_explicit_ladder_keeps_its_last_step_when_attempts_take_time(retry_settings):
    """Attempts take time (HTTP, queueing): the last step of an explicit ladder still runs."""
    retry_settings.NOTIFY_RETRY_SCHEDULE = "15s,30s,3m,1h"

    assert walk(schedule_from_settings(), latency=2.0) == [15, 30, 180, 3600]


def test_malformed_ladder_raises(retry_settings):
    """A typo in NOTIFY_RETRY_SCHEDULE fails loudly instead of never retrying."""
    retry_settings.NOTIFY_RETRY_SCHEDULE = "15s,soon"
    with pytest.raises(ValueError, match="soon"):
        schedule_from_settings()


def test_time_scale_compresses_delays_and_window(retry_settings):
    """NOTIFY_TIME_SCALE=0.001 turns 15 s into 15 ms and the 24 h window into 86.4 s."""
    retry_settings.NOTIFY_TIME_SCALE = 0.001
    schedule = schedule_from_settings()

    first = schedule.next_attempt_at(attempts_made=1, created_at=T0, now=T0)
    assert first == T0 + timedelta(milliseconds=15)
    # 86.39 s after creation is nothing against 24 h, but the scaled window is 86.4 s.
    late = T0 + timedelta(seconds=86.39)
    assert schedule.next_attempt_at(attempts_made=1, created_at=T0, now=late) is None
    assert walk(schedule) == pytest.approx([d / 1000 for d in schedule.delays])


def test_jitter_stays_within_the_fraction(retry_settings):
    """With jitter 0.1 every delay lies in [0.9, 1.1] × the step, and the spread is used."""
    schedule = RetrySchedule(delays=(100,), window=10**6, jitter=0.1)
    rng = random.Random(1234)

    delays = [
        (schedule.next_attempt_at(attempts_made=1, created_at=T0, now=T0, rng=rng) - T0)
        for _ in range(500)
    ]
    seconds = [d.total_seconds() for d in delays]
    assert all(90 <= s <= 110 for s in seconds)
    assert min(seconds) < 92 and max(seconds) > 108


def test_jitter_is_reproducible_with_a_seeded_rng(retry_settings):
    """The random source is injectable: the same seed gives the same due times."""
    retry_settings.NOTIFY_RETRY_JITTER = 0.2
    schedule = schedule_from_settings()

    def due_times(seed):
        rng = random.Random(seed)
        return [
            schedule.next_attempt_at(attempts_made=n, created_at=T0, now=T0, rng=rng)
            for n in range(1, 6)
        ]

    assert schedule.jitter == 0.2
    assert due_times(7) == due_times(7)
    assert due_times(7) != due_times(8)


@pytest.mark.parametrize("attempts_made", [0, 5, 6])
def test_no_attempt_outside_the_ladder(attempts_made):
    """Before the first attempt or once every step is used, there is nothing to schedule."""
    schedule = RetrySchedule(delays=(1, 2, 3, 4), window=10**6)

    assert schedule.next_attempt_at(attempts_made=attempts_made, created_at=T0, now=T0) is None


def test_exhausted_when_the_step_lands_past_the_window():
    """A step that would land after created_at + window is not taken; one landing on it is."""
    schedule = RetrySchedule(delays=(60, 60), window=100)

    on_edge = schedule.next_attempt_at(
        attempts_made=1, created_at=T0, now=T0 + timedelta(seconds=40)
    )
    assert on_edge == T0 + timedelta(seconds=100)
    assert (
        schedule.next_attempt_at(attempts_made=1, created_at=T0, now=T0 + timedelta(seconds=41))
        is None
    )


def test_retry_window_setting_overrides_the_schedules_window(retry_settings):
    """NOTIFY_RETRY_WINDOW=600 ends the exponential ladder after ten minutes."""
    retry_settings.NOTIFY_RETRY_WINDOW = 600
    schedule = schedule_from_settings()

    assert schedule.window == 600
    assert walk(schedule) == [15, 30, 60, 120, 240]  # the next step (480 s) would end at 945 s


def test_retry_window_setting_also_bounds_an_explicit_ladder(retry_settings):
    """The override applies to explicit ladders too."""
    retry_settings.NOTIFY_RETRY_SCHEDULE = "10s,10s,10s"
    retry_settings.NOTIFY_RETRY_WINDOW = 25

    assert walk(schedule_from_settings()) == [10, 10]
