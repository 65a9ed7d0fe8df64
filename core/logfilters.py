"""Log filters that keep the console to what someone needs to read (``LOGGING``).

Beat sends the sweeper every two seconds, and the worker logged each run twice more
("received", "succeeded ... {'released': 0, 'wakes': 0}"): three lines every two seconds
that said nothing happened, drowning what did. Those routine lines are demoted to DEBUG;
a task that did something (a non-zero count in what it returned), a retry, a warning or an
error is logged as before.
"""

import ast
import logging

from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS


class RoutineFilter(logging.Filter):
    """Demote routine Celery lines at INFO to DEBUG (shown only when the root logger is at
    DEBUG): beat's "Sending due task", the worker's "Task ... received", and "Task ... succeeded"
    when the task returned nothing done (``nothing_done``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Judged once per record: every handler with this filter then agrees on it.
        if getattr(record, "routine", None) is None:
            record.routine = _routine(record)
            if record.routine:
                record.levelno = logging.DEBUG
                record.levelname = logging.getLevelName(logging.DEBUG)
        return not record.routine or logging.getLogger().isEnabledFor(logging.DEBUG)


def _routine(record: logging.LogRecord) -> bool:
    if record.levelno != logging.INFO:
        return False
    if record.name == "celery.beat":
        return str(record.msg).startswith("Scheduler: Sending due task")
    if record.name == "celery.worker.strategy":
        return record.msg == LOG_RECEIVED
    if record.name == "celery.app.trace" and record.msg == LOG_SUCCESS:
        data = getattr(record, "data", None) or {}
        return nothing_done(data.get("return_value", "None"))
    return False


def nothing_done(return_value: str) -> bool:
    """Whether a task's result, as Celery logs it (its ``repr``), says no work was done:
    None, zero, empty, or a dict or list of only such values. Anything else, or a result
    that is not a plain literal, counts as work done."""
    try:
        value = ast.literal_eval(return_value)
    except (ValueError, SyntaxError):
        return False
    return _empty(value)


def _empty(value) -> bool:
    if isinstance(value, dict):
        return all(_empty(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(_empty(item) for item in value)
    return value is None or (isinstance(value, int | float) and value == 0)
