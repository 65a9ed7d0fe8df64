"""gunicorn's configuration for both web processes (Procfile: ``--config python:config.gunicorn``):
an access log without static files and scrapes, and prometheus_client's multiprocess mode
(config/settings/metrics.py) set up in the master, before any worker is forked."""

import os

from gunicorn.glogging import Logger

# Requests left out of the access log: every page pulls a dozen static files, and Prometheus
# scrapes every few seconds; neither says anything about what people did. The prefixes are
# STATIC_URL's and the /metrics route's (config/urls.py).
QUIET_PATHS = ("/static/", "/metrics")


class AccessLogger(Logger):
    """gunicorn's logger, whose access log leaves out requests for ``QUIET_PATHS``."""

    def access(self, resp, req, environ, request_time):
        if environ.get("PATH_INFO", "").startswith(QUIET_PATHS):
            return
        super().access(resp, req, environ, request_time)


logger_class = AccessLogger


def on_starting(server):
    """Read the settings in the master, which puts ``PROMETHEUS_MULTIPROC_DIR`` in the
    environment every worker inherits: prometheus_client chooses its multiprocess mode when
    first imported, and a worker forked later (one replaced) inherits that choice."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings

    settings.PROMETHEUS_MULTIPROC_DIR  # noqa: B018 (loading the settings is the point)


def child_exit(server, worker):
    """A worker exited: drop its live gauges, as prometheus_client's multiprocess mode asks
    of every gunicorn (its counters stay, so totals never go down)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
