"""Scenario "dead", dead endpoint cost: the worker CPU an endpoint that is down costs while
only it has notifications due. ``n`` notifications to it, retried every second (a ladder of
1 s steps, so the whole backlog stays due: the most a dead endpoint can ask for), beat's
sweep every ``NOTIFY_SWEEP_INTERVAL`` as deployed, on a worker of the default pool.

Two ways to be dead: ``refuse`` (nothing listens: every connection refused at once) and
``timeout`` (the fault proxy holds every request: each attempt ends at the deadline). Each
with the circuit breaker held closed (``stack.CIRCUIT_OFF``: every due retry is sent) and
with the defaults, measured once the circuit has opened; and the same worker with nothing
due, the floor. Figures: the worker's CPU seconds (every process of the pool, ``bench.cpu``)
and the endpoint's attempts over ``window`` seconds, both also per hour.
"""

import time
import uuid

from devstack.proxy import FaultProxy
from devstack.settle import wait_until

from .contenders import outbox_create
from .cpu import CpuMeter
from .probe import Beat
from .stack import CIRCUIT_OFF, start_worker

LADDER = ",".join(["1s"] * 600)  # due again a second after each attempt, all run long
# (name, fault proxy mode, circuit on), in an order that restarts the worker only when its
# settings change.
CASES = (
    ("idle", None, True),
    ("refuse", "refuse", True),
    ("timeout", "hang", True),
    ("refuse", "refuse", False),
    ("timeout", "hang", False),
)


def backlog(*, app_id: str, url: str, n: int):
    """``n`` notifications due to ``url``; a queryset of them."""
    from notifications.models import Notification

    tag = f"DE{uuid.uuid4().hex[:6]}"
    outbox_create(app_id=app_id, urls=[url], n=n, tag=tag)
    return Notification.objects.filter(subject__startswith=f"{tag}-")


def endpoint_of(rows):
    from notifications.models import Endpoint

    return Endpoint.objects.get(pk=rows.values_list("endpoint_id", flat=True)[:1])


def settle_in(stack, rows, *, circuit: bool, warmup: float) -> None:
    """Until the case is in its steady state: the backlog's own wake-ups taken from the
    queue (one message per notification, each a claim that finds nothing once the circuit is
    open), then the circuit open (when on) or ``warmup`` seconds of retries. Raises
    WaitTimeout after a minute.

    Only the queue counts: the unacked set is shared by every queue and by the workers the
    earlier scenarios stopped, and one message a stopped worker left there stays until the
    visibility timeout (an hour), while a wake-up taken runs in microseconds."""
    from notifications.models import Endpoint

    wait_until(
        lambda: not stack.broker_backlog("notifications")["queued"],
        timeout=60,
        interval=0.2,
        what="the backlog's wake-ups consumed",
    )
    if circuit:
        wait_until(
            lambda: endpoint_of(rows).state == Endpoint.State.OPEN,
            timeout=60,
            interval=0.2,
            what="the dead endpoint's circuit open",
        )
    else:
        time.sleep(warmup)


def measure(stack, rows, *, window: float) -> dict:
    """Worker CPU seconds and the endpoint's attempts over ``window`` seconds."""
    attempts = endpoint_of(rows).attempts_total if rows is not None else 0
    with CpuMeter(stack) as cpu:
        time.sleep(window)
    made = (endpoint_of(rows).attempts_total - attempts) if rows is not None else 0
    per_hour = 3600 / window
    return {
        "window_seconds": window,
        "worker_cpu_seconds": cpu.seconds["worker"],
        "worker_cpu_seconds_per_hour": round(cpu.seconds["worker"] * per_hour, 1),
        "attempts": made,
        "attempts_per_hour": round(made * per_hour),
    }


def run_case(stack, mode: str | None, circuit: bool, *, app_id: str, sizes) -> dict:
    """One case on the running worker; ``sizes``: ``n``, ``window``, ``warmup``."""
    from notifications.conf import notify_settings

    proxy = FaultProxy(mode=mode) if mode else None
    rows = None
    try:
        with Beat(notify_settings.SWEEP_INTERVAL):
            if proxy is not None:
                proxy.start()
                rows = backlog(app_id=app_id, url=f"{proxy.url}/notify", n=sizes.n)
                settle_in(stack, rows, circuit=circuit, warmup=sizes.warmup)
            result = measure(stack, rows, window=sizes.window)
        if rows is not None:
            result["circuit_at_end"] = endpoint_of(rows).state
            rows.update(state=rows.model.State.EXHAUSTED)
    finally:
        if proxy is not None:
            proxy.close()
    return result


def run(stack, *, app_id: str, config, sizes, progress) -> dict:
    """Every case of CASES: ``{"idle": {...}, "refuse": {"off": ..., "on": ...}, ...}``,
    each on a worker of ``config`` with the case's circuit settings."""
    results = {"pool": str(config), "n": sizes.n}
    running = None
    for name, mode, circuit in CASES:
        state = "on" if circuit else "off"
        if running != circuit:
            env = {"NOTIFY_RETRY_SCHEDULE": LADDER, **({} if circuit else CIRCUIT_OFF)}
            start_worker(stack, pool=config.pool, concurrency=config.concurrency, **env)
            running = circuit
        progress.set_postfix_str(f"dead: {name}, circuit {state}")
        figures = run_case(stack, mode, circuit, app_id=app_id, sizes=sizes)
        if mode is None:
            results[name] = figures
        else:
            results.setdefault(name, {})[state] = figures
        progress.update()
    stack.stop("worker")
    return results
