"""Scenario "slow", receivers answering in 250 ms: merchants' servers on several origins
(``bench.echo``, one endpoint each, enough that the per-endpoint cap is not what limits),
every notification answered 204 after ``delay_ms``. Rates are requests answered by the
receivers per second, from the first send (ours: the outbox commit) to the last answer.

- ours: N notifications to the origins in turn, on each worker pool under test;
- a plain thread pool in the driver with as many requests in flight as ours may have
  (``ours_in_flight``), no Celery, no database;
- the bare Celery task and django-webhook on the default pool (a request in flight per pool
  process, so fewer notifications: the rate is what counts);
- django-signal-webhooks: a thread per save in the driver, at most ``signal_threads`` alive
  (fewer notifications too: it spends tens of milliseconds of CPU on each).
"""

import time
import uuid

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
from .echo import Receivers, answered
from .pools import PoolConfig


def ours_in_flight(config: PoolConfig, origins: int) -> int:
    """The most requests ours can have in flight on ``config`` to ``origins`` endpoints: a
    dispatcher per process, each up to NOTIFY_MAX_IN_FLIGHT, every endpoint up to
    NOTIFY_ENDPOINT_MAX_IN_FLIGHT."""
    from notifications.conf import notify_settings

    processes = config.concurrency if config.pool == "prefork" else 1
    return min(
        processes * notify_settings.MAX_IN_FLIGHT,
        origins * notify_settings.ENDPOINT_MAX_IN_FLIGHT,
    )


def run_ours(receivers: Receivers, *, app_id: str, n: int, tag: str) -> dict:
    from notifications.models import Notification

    _, committed = outbox_create(app_id=app_id, urls=receivers.urls(tag), n=n, tag=tag)
    count = receivers.wait(tag, n)
    rows = Notification.objects.filter(subject__startswith=f"{tag}-")
    wait_until(
        lambda: not rows.exclude(state=Notification.State.DELIVERED).exists(),
        timeout=receivers.timeout,
        what=f"{n} notifications recorded delivered",
    )
    result = _rate(n, committed, count, errors=rows.filter(attempt_count__gt=1).count())
    result["attempt_errors"] = attempt_errors(tag)
    return result


def run_threads(receivers: Receivers, *, n: int, tag: str, threads: int) -> dict:
    bodies = signed_bodies(tag, n)
    started = time.time()
    outcomes = thread_pool_post(
        urls=receivers.urls(tag), bodies=bodies, threads=threads, timeout=receivers.timeout
    )
    result = _rate(n, started, answered(receivers.origins[0], tag), errors=outcomes.count(False))
    result["threads"] = threads
    return result


def run_bare(receivers: Receivers, *, stack: Stack, n: int, tag: str) -> dict:
    errors_key = f"bench:bare-errors:{tag}"
    bodies = signed_bodies(tag, n)
    started = time.time()
    bare_send(urls=receivers.urls(tag), bodies=bodies, errors_key=errors_key)
    count = receivers.wait(tag, n, gave_up=lambda: _broker_idle(stack))
    with stack.redis() as client:
        errors = int(client.get(errors_key) or 0)
    return _rate(n, started, count, errors=errors)


def run_django_webhook(receivers: Receivers, *, stack: Stack, n: int, tag: str) -> dict:
    from .models import SlowPeerEvent

    url = receivers.urls(tag, "peer")[0]
    peers.django_webhook_create(url=url, model_label="bench.SlowPeerEvent")
    started = peers.django_webhook_fire(SlowPeerEvent, [recharge_data(tag, i) for i in range(n)])
    count = receivers.wait(tag, n, gave_up=lambda: _broker_idle(stack))
    return _rate(n, started, count, errors=n - count["answered"])


def run_signal(receivers: Receivers, *, n: int, tag: str, threads: int) -> dict:
    hooks = peers.signal_hooks_create(urls=receivers.urls(tag, "peer"), tag=tag)
    datas = [recharge_data(tag, i) for i in range(n)]
    started = peers.signal_fire(datas, hooks=hooks, threads=threads, timeout=receivers.timeout)
    count = receivers.wait(tag, n, gave_up=lambda: peers.signal_threads() == 0)
    peers.signal_release()
    result = _rate(n, started, count, errors=n - count["answered"])
    result["threads"] = threads
    return result


def _broker_idle(stack: Stack) -> bool:
    return not any(stack.broker_backlog("bench").values())


def _rate(n: int, started: float, count: dict, *, errors: int) -> dict:
    """Figures of one contender: answered requests per second from ``started`` (time.time())
    to the receivers' last answer."""
    seconds = (count["last"] or started) - started
    return {
        "n": n,
        "answered": count["answered"],
        "seconds": round(seconds, 3),
        "rate": round(count["answered"] / seconds, 1) if seconds > 0 else None,
        "errors": errors,
    }


def new_tag(name: str) -> str:
    return f"{name[:2].upper()}{uuid.uuid4().hex[:6]}"


def measure(name: str, run, *, meter, **kwargs) -> dict:
    """``run(tag=..., **kwargs)`` under a fresh ``meter()`` (``cpu.CpuMeter``): its figures
    with CPU ms per request answered, or ``{"error": ...}`` when it timed out."""
    try:
        with meter() as cpu:
            result = run(tag=new_tag(name), **kwargs)
    except WaitTimeout as exc:
        return {"error": str(exc)}
    result["cpu_ms"] = cpu.per_item(max(1, result["answered"]))
    return result


def run(stack: Stack, *, app_id: str, configs: list[PoolConfig], sizes, progress, meter):
    """Every contender (see the module docstring): the baselines on ``configs[0]``, the
    default pool, then ours on each of ``configs``; ours ÷ each baseline per pool, and the
    pool where ours was fastest. ``sizes``: ``n``, ``celery_n``,
    ``signal_n``, ``delay_ms``, ``signal_threads``, ``timeout``. Returns the figures and ratios."""
    from .stack import echo_origins, start_worker

    receivers = Receivers(echo_origins(stack), sizes.delay_ms, sizes.timeout)
    default = configs[0]
    in_flight = ours_in_flight(default, len(receivers.origins))
    baselines = {
        "threads": (run_threads, {"n": sizes.n, "threads": in_flight}),
        "bare": (run_bare, {"stack": stack, "n": sizes.celery_n}),
        "django_webhook": (run_django_webhook, {"stack": stack, "n": sizes.celery_n}),
        "signal_webhooks": (run_signal, {"n": sizes.signal_n, "threads": sizes.signal_threads}),
    }
    results = {"n": sizes.n, "origins": len(receivers.origins), "delay_ms": sizes.delay_ms}
    ours = {}
    for config in configs:
        progress.set_postfix_str(f"slow: starting a {config} worker")
        start_worker(stack, pool=config.pool, concurrency=config.concurrency)
        if config == default:
            for name, (runner, kwargs) in baselines.items():
                progress.set_postfix_str(f"slow: {name}")
                results[name] = measure(name, runner, meter=meter, receivers=receivers, **kwargs)
        progress.set_postfix_str(f"slow: ours on {config}")
        ours[str(config)] = measure(
            "ours", run_ours, meter=meter, receivers=receivers, app_id=app_id, n=sizes.n
        )
        ours[str(config)]["in_flight"] = ours_in_flight(config, len(receivers.origins))
        progress.update()
    stack.stop("worker")
    results["ours"] = ours
    results["default_pool"] = str(default)
    rated = [pool for pool, row in ours.items() if row.get("rate")]
    results["best_pool"] = max(rated, key=lambda pool: ours[pool]["rate"]) if rated else None
    results["ratios"] = {pool: ratios(row, results, baselines) for pool, row in ours.items()}
    return results


def ratios(ours: dict, results: dict, names) -> dict:
    """ours ÷ each baseline's rate (None where either is missing)."""
    rate = ours.get("rate")
    return {
        name: round(rate / results[name]["rate"], 3) if rate and results[name].get("rate") else None
        for name in names
    }
