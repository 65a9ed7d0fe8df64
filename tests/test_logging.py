"""What the console shows (core/logfilters.py, config/gunicorn.py): Celery's routine lines
demoted to DEBUG, work done kept; static files and scrapes out of gunicorn's access log.

The records are made by the libraries' own logging calls (celery's trace and beat loggers,
gunicorn's access logger), so a change in their messages shows up here."""

import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from celery.app import trace
from gunicorn.config import Config

from config.gunicorn import AccessLogger
from core.logfilters import RoutineFilter, nothing_done


class Collect(logging.Handler):
    """A handler with the project's filter that keeps the messages it would print."""

    def __init__(self):
        super().__init__(level=logging.NOTSET)
        self.addFilter(RoutineFilter())
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(f"{record.levelname} {record.getMessage()}")


@pytest.fixture
def console():
    """The filtered handler on the root logger, at INFO (as ``celery --loglevel INFO``)."""
    handler, root = Collect(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def succeeded(return_value: str) -> None:
    context = {"id": "t1", "name": "notifications.sweep", "return_value": return_value}
    trace.info(trace.LOG_SUCCESS, {**context, "runtime": 0.004})


def test_an_idle_sweep_prints_nothing(console):
    """Beat sending the sweeper, the worker receiving it, and its success with nothing done
    print nothing at INFO."""
    logging.getLogger("celery.beat").info(
        "Scheduler: Sending due task %s (%s)", "notifications: sweep", "notifications.sweep"
    )
    logging.getLogger("celery.worker.strategy").info(
        trace.LOG_RECEIVED, {"id": "t1", "name": "notifications.sweep", "args": "", "kwargs": ""}
    )
    succeeded("{'released': 0, 'wakes': 0}")

    assert console.lines == []


def test_work_done_warnings_and_other_lines_stay(console):
    """A sweep that released claims, a retry, a warning and any other INFO line print."""
    succeeded("{'released': 2, 'wakes': 0}")
    trace.info(trace.LOG_RETRY, {"id": "t2", "name": "x", "exc": "boom"})
    logging.getLogger("celery.beat").warning("Scheduler: Sending due task failed")
    logging.getLogger("notifications").info("endpoint disabled")

    assert [line.split(" ")[0] for line in console.lines] == ["INFO", "INFO", "WARNING", "INFO"]
    assert "succeeded" in console.lines[0] and "'released': 2" in console.lines[0]


def test_routine_lines_show_at_debug(console):
    """With the root logger at DEBUG the routine lines are there, labelled DEBUG."""
    logging.getLogger().setLevel(logging.DEBUG)

    succeeded("None")

    assert len(console.lines) == 1 and console.lines[0].startswith("DEBUG Task")


@pytest.mark.parametrize(
    ("return_value", "idle"),
    [
        ("None", True),
        ("0", True),
        ("{}", True),
        ("{'released': 0, 'wakes': 0}", True),
        ("[0, {'a': 0}]", True),
        ("3", False),
        ("{'applied': 1}", False),
        ("'expired'", False),
        ("<object at 0x7f>", False),
    ],
)
def test_nothing_done(return_value, idle):
    """None, zeros and empties are nothing done; any other value, or one not a literal, is
    work done."""
    assert nothing_done(return_value) is idle


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/static/admin/css/base.css", False),
        ("/metrics", False),
        ("/api/accounts/notify/", True),
        ("/pay/T1/", True),
    ],
)
def test_gunicorn_access_log_leaves_out_static_files_and_scrapes(path, logged):
    """gunicorn's access log (config/gunicorn.py): static files and /metrics are left out,
    pages and API calls are logged."""
    config = Config()
    config.set("accesslog", "-")
    logger = AccessLogger(config)
    collected = Collect()
    logger.access_log.handlers = [collected]
    environ = {
        "PATH_INFO": path,
        "RAW_URI": path,
        "REQUEST_METHOD": "GET",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "QUERY_STRING": "",
    }
    request = SimpleNamespace(headers=[])
    response = SimpleNamespace(status="200 OK", sent=10, headers=[])

    logger.access(response, request, environ, timedelta(milliseconds=10))

    assert len(collected.lines) == int(logged)
    if logged:
        assert f'"GET {path} HTTP/1.1" 200' in collected.lines[0]
