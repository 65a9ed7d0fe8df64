"""One clock for every host: the database's.

Claims, their timeouts and retry schedules are compared across hosts (a worker claims, a
sweeper on another host decides the claim is orphaned; a row written on one host falls due
on another). Hosts' clocks drift; the database is the one thing they all share, so those
times are read from it. Found by the cluster's skewed-clock scenario (chaos 16): a sweeper
whose clock ran three minutes ahead released other workers' fresh claims as orphaned.

Reading it is a round trip, and the claim and record paths ask for it on every cycle, so a
process reads it at most every ``RESAMPLE_SECONDS`` and carries it forward on its monotonic
clock in between: that clock is not stepped when the host's wall clock is (NTP, an operator,
libfaketime's offset), and drifts by parts per million, far below the seconds that claims
and schedules are measured in.
"""

import time
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

RESAMPLE_SECONDS = 10.0
# (time.monotonic(), the database's time) when this process last read the database's clock.
_reading: tuple[float, datetime] | None = None


def database_now() -> datetime:
    """The database server's current time (aware, UTC on PostgreSQL), read at most every
    ``RESAMPLE_SECONDS`` and carried forward on this process's monotonic clock in between.
    SQLite lives in this process, so there it is this host's clock."""
    global _reading
    if connection.vendor != "postgresql":
        return timezone.now()
    now = time.monotonic()
    if _reading is None or now - _reading[0] >= RESAMPLE_SECONDS:
        _reading = (now, _read_database_clock())
    return _reading[1] + timedelta(seconds=now - _reading[0])


def _read_database_clock() -> datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]
