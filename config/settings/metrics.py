"""Prometheus metrics (``/metrics``, core/metrics.py): who may scrape, and where the
processes of one host pool their counters.

The Procfile runs several processes (two gunicorns of two workers each, a Celery worker with
its pool, beat); prometheus_client's multiprocess mode has each write its counters to files
in ``PROMETHEUS_MULTIPROC_DIR`` and a scrape of any one of them sums them all. The library
reads that variable from the environment when it is first imported, so it is put there
before any app module imports it; the directory must be emptied before the processes start
(python -m devstack does; a deployment's start script must: README "Metrics").
"""

import os

from .env import VAR_DIR, env

# A scrape must send ``Authorization: Bearer <token>``; empty: open (development only,
# config.settings.production requires one). nginx never exposes /metrics (deploy/nginx.conf).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "prometheus"))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
os.makedirs(PROMETHEUS_MULTIPROC_DIR, exist_ok=True)
# A Celery worker on a host without gunicorn serves its host's counters on this port
# (config/celery.py); None: it does not. No token there: bind it to an address only the
# scraper's network reaches.
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=None)
WORKER_METRICS_ADDR = env("WORKER_METRICS_ADDR", default="127.0.0.1")
# Collectors that compute gauges from the database or the broker at scrape time.
METRICS_COLLECTORS = [
    "notifications.metrics.NotificationsCollector",
    "core.metrics.BrokerCollector",
]
# The dashboard on the admin index (notifications/stats.py): hours shown, one bar each.
DASHBOARD_HOURS = env.int("DASHBOARD_HOURS", default=24)
# Seconds the hourly figures are reused (the cache) before the window's attempts are read again.
DASHBOARD_CACHE_SECONDS = env.int("DASHBOARD_CACHE_SECONDS", default=60)
