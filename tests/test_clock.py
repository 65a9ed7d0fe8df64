"""core/clock.py: the database's clock, read at most every RESAMPLE_SECONDS per process."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core import clock

pytestmark = pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="SQLite lives in this process: its clock is this host's, nothing is read",
)


@pytest.fixture
def monotonic(monkeypatch):
    """``time.monotonic`` as core.clock sees it, moved by hand: ``monotonic.now``."""

    class Clock:
        now = 1000.0

    monkeypatch.setattr(clock.time, "monotonic", lambda: Clock.now)
    monkeypatch.setattr(clock, "_reading", None)
    return Clock


def test_read_once_then_carried_forward_on_the_monotonic_clock(db, monotonic):
    """The first call reads the database; a call 4 s later (monotonic) makes no query and
    is exactly 4 s on; once RESAMPLE_SECONDS have passed the database is read again."""
    with CaptureQueriesContext(connection) as first:
        read = clock.database_now()
    monotonic.now += 4
    with CaptureQueriesContext(connection) as carried:
        later = clock.database_now()
    monotonic.now += clock.RESAMPLE_SECONDS
    with CaptureQueriesContext(connection) as again:
        clock.database_now()

    assert (len(first), len(carried), len(again)) == (1, 0, 1)
    assert later - read == timedelta(seconds=4)


def test_it_is_the_databases_clock_not_the_hosts(db, monotonic, monkeypatch):
    """A host clock three minutes ahead changes nothing: the reading is the server's."""
    real = clock.database_now()
    ahead = timezone.now() + timedelta(minutes=3)
    monkeypatch.setattr(timezone, "now", lambda: ahead)
    monkeypatch.setattr(clock, "_reading", None)

    assert abs(clock.database_now() - real) < timedelta(seconds=5)
