"""One clock for every host: the database's.

Claims, their timeouts and retry schedules are compared across hosts (a worker claims, a
sweeper on another host decides the claim is orphaned; a row written on one host falls due
on another). Hosts' clocks drift; the database is the one thing they all share, so those
times are read from it. Found by the cluster's skewed-clock scenario (chaos 16): a sweeper
whose clock ran three minutes ahead released other workers' fresh claims as orphaned.
"""

from datetime import datetime

from django.db import connection
from django.utils import timezone


def database_now() -> datetime:
    """The database server's current time (aware, UTC on PostgreSQL). SQLite lives in this
    process, so there it is this host's clock."""
    if connection.vendor != "postgresql":
        return timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]
