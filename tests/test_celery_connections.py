"""Database connections around Celery tasks (config/celery.py): kept between tasks as Django
keeps them between requests, closed after each task under a greenlet pool."""

from types import SimpleNamespace

import pytest
from django.db import connection

from config import celery

pytestmark = pytest.mark.django_db(transaction=True)


def worker_task(*, eager: bool = False):
    """What the task signals pass as ``task``: only its request's ``is_eager`` is read."""
    return SimpleNamespace(request=SimpleNamespace(is_eager=eager))


def open_connection(monkeypatch, *, max_age: int):
    """A fresh connection opened under ``CONN_MAX_AGE = max_age`` (restored after the test)."""
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", max_age)
    connection.close()
    connection.ensure_connection()
    return connection.connection


def test_a_healthy_connection_is_kept_for_the_next_task(monkeypatch):
    before = open_connection(monkeypatch, max_age=60)

    celery.close_old_database_connections(task=worker_task())
    connection.ensure_connection()

    assert connection.connection is before


def test_a_connection_past_its_age_is_closed(monkeypatch):
    open_connection(monkeypatch, max_age=0)

    celery.close_old_database_connections(task=worker_task())

    assert connection.connection is None


def test_under_a_greenlet_pool_the_task_connection_is_closed(monkeypatch):
    open_connection(monkeypatch, max_age=60)
    monkeypatch.setattr(celery, "_greenlets", lambda: True)

    celery.close_old_database_connections(task=worker_task())

    assert connection.connection is None


def test_an_eager_task_leaves_its_callers_connection_alone(monkeypatch):
    before = open_connection(monkeypatch, max_age=0)

    celery.close_old_database_connections(task=worker_task(eager=True))

    assert connection.connection is before


def test_celery_fixup_is_told_not_to_close_connections_itself(settings):
    """Without CELERY_DB_REUSE_MAX Celery's Django fixup closes every connection around every
    task, whatever CONN_MAX_AGE says."""
    assert celery.app.conf.get("CELERY_DB_REUSE_MAX") >= 2**31
    assert settings.DATABASES["default"]["CONN_MAX_AGE"] == 60
