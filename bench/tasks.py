"""Baseline Celery tasks, run by the same worker (pool, concurrency, settings) as ours.

``bare_post`` is what delivering a notification costs with everything but the HTTP taken
away: sign the body, POST it with a shared ``requests.Session``, no database. ``noop`` is the
floor of any task's latency: it only reports how long the message took to start.
"""

import threading
import time
from datetime import UTC, datetime

import redis
import requests
from celery import shared_task
from django.conf import settings

from notifications.signing import signed_headers

_local = threading.local()


def _session() -> requests.Session:
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session


def _redis() -> redis.Redis:
    if not hasattr(_local, "redis"):
        _local.redis = redis.Redis.from_url(settings.REDIS_URL)
    return _local.redis


@shared_task(name="bench.bare_post")
def bare_post(url: str, body: str, webhook_id: str, secret: str, errors_key: str):
    """Sign ``body`` and POST it to ``url``; a failure is counted in Redis at ``errors_key``."""
    headers = signed_headers(
        webhook_id=webhook_id, body=body, secrets=[secret], timestamp=datetime.now(UTC)
    )
    try:
        response = _session().post(
            url,
            data=body.encode(),
            headers=headers,
            # Our attempt deadline as the read timeout: the bare task gives up no later.
            timeout=(settings.NOTIFY_CONNECT_TIMEOUT, settings.NOTIFY_ATTEMPT_DEADLINE),
            allow_redirects=False,
        )
        ok = 200 <= response.status_code < 300
    except requests.RequestException:
        ok = False
    if not ok:
        _redis().incr(errors_key)


@shared_task(name="bench.noop")
def noop(sent_at: float, reply_key: str):
    """Report the delay from ``sent_at`` (``time.time()`` at send) to this task's start."""
    started = time.time()
    _redis().rpush(reply_key, repr(started - sent_at))
