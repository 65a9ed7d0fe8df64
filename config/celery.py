"""The Celery application; its settings live in Django settings under the ``CELERY_`` prefix."""

import os
import sys

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def close_old_database_connections(task=None, **kwargs) -> None:
    """What Django does around each request, around each task: drop a connection that is
    past ``CONN_MAX_AGE``, errored or (next use) fails its health check, keep the others
    (settings ``CELERY_DB_REUSE_MAX``). Not for a task run eagerly, inside its caller's
    transaction (as Celery's own fixup). Under gevent or eventlet every task runs in a new
    greenlet whose connection no later task can reuse, so it is closed at once (kept, they
    piled up to PostgreSQL's "too many clients": bench, pool gevent:32)."""
    from django.db import close_old_connections, connections

    if getattr(getattr(task, "request", None), "is_eager", False):
        return
    if _greenlets():
        connections.close_all()
    else:
        close_old_connections()


def _greenlets() -> bool:
    """Whether this worker's threads are greenlets (``--pool gevent`` or ``eventlet``)."""
    gevent = sys.modules.get("gevent.monkey")
    if gevent is not None and gevent.is_module_patched("threading"):
        return True
    eventlet = sys.modules.get("eventlet.patcher")
    return eventlet is not None and eventlet.is_monkey_patched("thread")


@worker_init.connect
def serve_metrics(**kwargs) -> None:
    """With ``WORKER_METRICS_PORT`` set (a worker host without gunicorn), serve this host's
    counters (core.metrics.host_registry) on it from the worker's main process, on
    ``WORKER_METRICS_ADDR``; the pool's processes are forked later and write their own."""
    from django.conf import settings

    if settings.WORKER_METRICS_PORT is None:
        return
    from prometheus_client import start_http_server

    from core.metrics import host_registry

    start_http_server(
        settings.WORKER_METRICS_PORT, addr=settings.WORKER_METRICS_ADDR, registry=host_registry()
    )


@worker_process_shutdown.connect
def metrics_process_dead(pid=None, **kwargs) -> None:
    """A pool process exits: drop its live gauges, as prometheus_client's multiprocess mode
    asks (its counters stay, so totals never go down)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid or os.getpid())
