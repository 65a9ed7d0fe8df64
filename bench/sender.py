"""Scenario 1, sender throughput: N notifications due at once, delivered to the minimal
receiver, against three baselines on the same worker pool and concurrency.

- ours: ``notification_create`` for N rows in one transaction (the outbox); each row's
  ``notifications.deliver`` task wakes its worker process's dispatcher, which claims, sends
  and records them in batches. Timed from the commit that makes all N due
  (which sends their N messages) until every row is ``delivered`` in the database; writing
  the rows is reported apart (``outbox_write_seconds``).
- bare: ``bench.bare_post``, a Celery task that only signs and POSTs the same body with a
  shared ``requests.Session`` (no database). Timed from the first send until the queue is
  empty and every message acknowledged.
- threads: a plain ``ThreadPoolExecutor`` of ``concurrency`` threads POSTing the same signed
  bodies, no Celery: what this machine's HTTP path allows.
- peer: django-webhook. N ``PeerEvent`` saves in one transaction; its ``post_save`` signal
  sends its ``fire_webhook`` task per webhook at once (before the commit: the peer does not
  wait for it), so it is timed from the first save, when its first message goes, until every
  one of its ``WebhookEvent`` rows is ``SUCCESS``.
"""

import time
import uuid
from dataclasses import dataclass

from devstack.settle import WaitTimeout, wait_until
from devstack.stack import Stack

from . import peers
from .common import recharge_data
from .contenders import (
    attempt_errors,
    bare_send,
    outbox_create,
    signed_bodies,
    thread_pool_post,
)
from .pools import PoolConfig

CONTENDERS = ("ours", "bare", "threads", "peer")


@dataclass
class Fixture:
    receiver_url: str
    app_id: str
    stack: Stack

    def broker_idle(self, queue: str) -> bool:
        """No message waiting in ``queue`` and none delivered but unacknowledged."""
        return not any(self.stack.broker_backlog(queue).values())


def prepare(*, stack: Stack, app_id: str) -> Fixture:
    """The peer's webhook, aimed at the instant receiver as ours (merchant ``app_id``) is."""
    receiver_url = stack.url("receiver")
    peers.django_webhook_create(url=f"{receiver_url}/peer/", model_label="bench.PeerEvent")
    return Fixture(f"{receiver_url}/notify/", app_id, stack)


def run_ours(fixture: Fixture, *, n: int, tag: str, timeout: float) -> dict:
    from notifications.models import Notification

    delivered = Notification.objects.filter(state=Notification.State.DELIVERED)
    before = delivered.count()
    began, committed = outbox_create(
        app_id=fixture.app_id, urls=[fixture.receiver_url], n=n, tag=tag
    )
    fired = time.time()
    done = _wait_idle_then_count(
        fixture, "notifications", delivered, before + n, timeout, f"{n} notifications delivered"
    )
    failed = Notification.objects.filter(subject__startswith=f"{tag}-", attempt_count__gt=1)
    result = _result(n, committed, fired, done, errors=failed.count())
    result["outbox_write_seconds"] = round(committed - began, 3)
    return result


def run_bare(fixture: Fixture, *, n: int, tag: str, timeout: float) -> dict:
    errors_key = f"bench:bare-errors:{tag}"
    bodies = signed_bodies(tag, n)
    started = time.time()
    bare_send(urls=[fixture.receiver_url], bodies=bodies, errors_key=errors_key)
    fired = time.time()
    wait_until(
        lambda: fixture.broker_idle("bench"),
        timeout=timeout,
        interval=0.02,
        what=f"{n} bare tasks run",
    )
    done = time.time()
    with fixture.stack.redis() as client:
        errors = int(client.get(errors_key) or 0)
    return _result(n, started, fired, done, errors=errors)


def run_threads(fixture: Fixture, *, n: int, tag: str, concurrency: int, timeout: float) -> dict:
    bodies = signed_bodies(tag, n)
    started = time.time()
    outcomes = thread_pool_post(
        urls=[fixture.receiver_url], bodies=bodies, threads=concurrency, timeout=timeout
    )
    done = time.time()
    return _result(n, started, started, done, errors=outcomes.count(False))


def run_peer(fixture: Fixture, *, n: int, tag: str, timeout: float) -> dict:
    from celery import states
    from django_webhook.models import WebhookEvent

    from .models import PeerEvent

    succeeded = WebhookEvent.objects.filter(status=states.SUCCESS)
    before_ok = succeeded.count()
    before_all = WebhookEvent.objects.count()
    started = peers.django_webhook_fire(PeerEvent, [recharge_data(tag, i) for i in range(n)])
    fired = time.time()
    done = _wait_idle_then_count(
        fixture, "bench", succeeded, before_ok + n, timeout, f"{n} django-webhook events succeeded"
    )
    attempts = WebhookEvent.objects.count() - before_all
    return _result(n, started, fired, done, errors=attempts - n)


def run_config(
    fixture: Fixture, config: PoolConfig, *, n: int, timeout: float, progress, meter
) -> dict:
    """All four contenders on the worker the caller started with ``config``, each with its
    CPU split per notification (``meter()`` is a fresh ``cpu.CpuMeter``)."""
    results = {}
    for name in ("threads", "bare", "ours", "peer"):
        progress.set_postfix_str(f"{config} {name}")
        tag = f"{name[:2].upper()}{uuid.uuid4().hex[:6]}"
        try:
            with meter() as cpu:
                results[name] = _run_one(fixture, name, config, n=n, tag=tag, timeout=timeout)
            results[name]["cpu_ms"] = cpu.per_item(n)
        except WaitTimeout as exc:
            results[name] = {"error": str(exc)}
        if name == "ours":
            results[name]["attempt_errors"] = attempt_errors(tag)
        # Let the stragglers of one contender (a last ack, the peer's event updates) settle
        # before the next starts.
        time.sleep(0.5)
    ours = results["ours"].get("rate")
    ratios = {}
    for name in ("bare", "threads", "peer"):
        rate = results[name].get("rate")
        ratios[name] = ours / rate if ours and rate else None
    return {
        "pool": config.pool,
        "concurrency": config.concurrency,
        **results,
        "ratios": ratios,
    }


def _run_one(fixture: Fixture, name: str, config: PoolConfig, **kwargs) -> dict:
    if name == "ours":
        return run_ours(fixture, **kwargs)
    if name == "bare":
        return run_bare(fixture, **kwargs)
    if name == "threads":
        return run_threads(fixture, concurrency=config.concurrency, **kwargs)
    return run_peer(fixture, **kwargs)


def _wait_idle_then_count(fixture: Fixture, queue: str, rows, target: int, timeout, what) -> float:
    """The ``time.time()`` when ``queue`` is empty with nothing unacknowledged and ``rows``
    counts ``target``. Raises WaitTimeout after ``timeout`` seconds.

    The broker is asked first (a Redis call) and the rows counted only once it is idle, so
    the driver's polling every 50 ms does not load the database being measured."""
    wait_until(
        lambda: fixture.broker_idle(queue) and rows.count() >= target,
        timeout=timeout,
        interval=0.05,
        what=what,
    )
    return time.time()


def _result(n: int, started: float, fired: float, done: float, *, errors: int) -> dict:
    seconds = done - started
    return {
        "n": n,
        "seconds": round(seconds, 3),
        "fire_seconds": round(fired - started, 3),
        "rate": round(n / seconds, 1),
        "errors": errors,
    }
