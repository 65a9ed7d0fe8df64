"""The database: SQLite by default so `make run` needs nothing installed; DATABASE_URL selects
PostgreSQL (anything beyond one machine: README "Scaling out")."""

import sqlite3
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from .env import VAR_DIR, env

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The claim and the receipt are single UPDATE/INSERT … RETURNING statements.
    if sqlite3.sqlite_version_info < (3, 35):
        raise ImproperlyConfigured(f"SQLite 3.35+ is needed, this is {sqlite3.sqlite_version}")
    DATABASES["default"]["OPTIONS"] = {
        # Web, worker and beat are separate processes writing one file: WAL lets readers
        # proceed during a write, IMMEDIATE takes the write lock at BEGIN so two writers
        # queue on the busy timeout instead of failing with "database is locked" mid-way.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    _db_path = Path(DATABASES["default"]["NAME"])
    # var/ is not in the repository: on a fresh clone SQLite could not create the file there
    # ("unable to open database file") for `make run`, `migrate` or any other command.
    _db_path.parent.mkdir(parents=True, exist_ok=True)
    # A file beside the database, not :memory:, so the worker processes of the end-to-end
    # tests see it too.
    DATABASES["default"]["TEST"] = {"NAME": str(_db_path.with_name(f"test_{_db_path.name}"))}
# Persistent connections: a new PostgreSQL connection per request or task (a backend
# process forked and authenticated) was ~15 % of the notify endpoint's time (bench
# "receiver throughput"). Health checks drop a connection the server closed meanwhile.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
