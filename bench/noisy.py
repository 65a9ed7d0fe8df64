"""Scenario "noisy", noisy neighbour: a healthy endpoint's deliveries while another endpoint
of the same sender has ``bad_n`` notifications due and hangs, or drips its answer one byte
every ``drip_interval`` seconds; against the same with no bad endpoint, on a fresh worker
each
(one worker for all three, the bad endpoint's leftovers set aside between them).

The bad endpoint is the fault proxy (``devstack.proxy``, in this process); its notifications
are committed first, and the healthy ones start once it has its cap of requests in flight
(its circuit still closed: the first attempts end at the deadline). The healthy receiver is
``bench.echo`` answering at once, which records when each request arrived. Then, healthy:

- throughput: ``burst`` notifications committed at once, requests answered per second from
  the commit to the last answer;
- latency: ``n`` orders paid one after another at ``rate`` a second (the real
  ``recharge_order_pay``, each its own commit), each "pay → received" from the payment's
  commit to its notification's arrival (one clock). Paced, so every case is offered the
  same load whatever the driver's speed; ``n`` ÷ ``rate`` seconds span the bad endpoint's
  first deadline and its circuit opening.
"""

import contextlib
import time
import uuid

from devstack.proxy import FaultProxy
from devstack.settle import WaitTimeout, wait_until

from .contenders import outbox_create
from .echo import Receivers, arrivals
from .latency import pay, pending_orders, summary

CASES = ("none", "hang", "drip")


def bad_receiver(case: str, drip_interval: float) -> FaultProxy | None:
    """The misbehaving endpoint of ``case`` (not started), None for ``"none"``."""
    if case == "none":
        return None
    return FaultProxy(mode=case, drip_interval=drip_interval)


def bad_backlog(*, app_id: str, url: str, n: int, timeout: float) -> dict:
    """``n`` notifications due to ``url``, committed at once; returns once the endpoint has
    its cap of requests in flight (or ``timeout`` seconds passed): what it holds then."""
    from notifications.conf import notify_settings
    from notifications.models import Notification

    tag = f"NB{uuid.uuid4().hex[:6]}"
    outbox_create(app_id=app_id, urls=[url], n=n, tag=tag)
    sending = Notification.objects.filter(
        subject__startswith=f"{tag}-", state=Notification.State.SENDING
    )
    cap = notify_settings.ENDPOINT_MAX_IN_FLIGHT
    with contextlib.suppress(WaitTimeout):  # what it holds is reported either way
        wait_until(lambda: sending.count() >= cap, timeout=timeout, interval=0.1)
    return {"tag": tag, "in_flight_at_start": sending.count()}


def healthy_burst(*, app_id: str, origin: str, n: int, timeout: float) -> dict:
    """``n`` notifications to ``origin`` committed at once; requests answered per second
    from the commit to the last answer."""
    tag = f"NT{uuid.uuid4().hex[:6]}"
    receivers = Receivers([origin], 0, timeout)
    _, committed = outbox_create(app_id=app_id, urls=receivers.urls(tag), n=n, tag=tag)
    seconds = receivers.wait(tag, n)["last"] - committed
    return {"n": n, "seconds": round(seconds, 3), "rate": _per_second(n, seconds)}


def healthy_stream(*, app_id: str, origin: str, n: int, rate: float, timeout: float) -> dict:
    """Pay ``n`` orders notifying ``origin``, ``rate`` a second; their pay → received
    latencies."""
    from notifications.models import Notification

    tag = f"NH{uuid.uuid4().hex[:6]}"
    orders = pending_orders(
        n=n, tag=tag, app_id=app_id, account_no="AC000000000001", notify_url=f"{origin}/0/{tag}/"
    )
    committed = {}
    began = time.monotonic()
    for number, order in enumerate(orders):
        time.sleep(max(0.0, began + number / rate - time.monotonic()))
        committed[order.tx_no] = pay(order.tx_no)
    arrived = wait_until(
        lambda: _all_arrived(origin, tag, n),
        timeout=timeout,
        interval=0.2,
        what=f"{n} healthy notifications received",
    )
    ids = Notification.objects.filter(subject__in=committed).values_list("subject", "id")
    latencies = [arrived[f"msg_{pk.hex}"] - committed[subject] for subject, pk in ids]
    paying = max(committed.values()) - min(committed.values())
    return {
        "n": n,
        "rate_asked": rate,
        "rate_paid": _per_second(n - 1, paying),
        **summary(latencies),
    }


def _per_second(n: int, seconds: float) -> float | None:
    return round(n / seconds, 1) if seconds > 0 else None


def _all_arrived(origin: str, tag: str, n: int) -> dict | None:
    seen = arrivals(origin, tag)
    return seen if len(seen) >= n else None


def bad_figures(tag: str) -> dict:
    """The bad endpoint's attempts so far and its circuit."""
    from notifications.models import Endpoint, Notification

    rows = Notification.objects.filter(subject__startswith=f"{tag}-")
    endpoint = Endpoint.objects.get(pk=rows.values_list("endpoint_id", flat=True)[:1])
    return {"attempts": endpoint.attempts_total, "circuit": endpoint.state}


def set_aside(tag: str) -> None:
    """Once the bad endpoint's requests in flight have ended (its proxy closed them; at most
    the attempt deadline), its notifications are exhausted: nothing of them is left for the
    next case."""
    from notifications.conf import notify_settings
    from notifications.models import Notification

    rows = Notification.objects.filter(subject__startswith=f"{tag}-")
    sending = rows.filter(state=Notification.State.SENDING)
    with contextlib.suppress(WaitTimeout):
        wait_until(lambda: not sending.exists(), timeout=notify_settings.ATTEMPT_DEADLINE + 5)
    rows.update(state=Notification.State.EXHAUSTED)


def run_case(stack, case: str, *, app_id: str, sizes) -> dict:
    """One case on the running worker: the bad backlog (unless ``"none"``), then the healthy
    burst and stream. ``sizes``: ``n``, ``rate``, ``burst``, ``bad_n``, ``drip_interval``."""
    from .stack import echo_origins

    proxy = bad_receiver(case, sizes.drip_interval)
    result = {"case": case}
    try:
        if proxy is not None:
            proxy.start()
            result["bad"] = bad_backlog(
                app_id=app_id, url=f"{proxy.url}/notify", n=sizes.bad_n, timeout=30
            )
        origin = echo_origins(stack)[0]
        result["burst"] = healthy_burst(app_id=app_id, origin=origin, n=sizes.burst, timeout=60)
        result["stream"] = healthy_stream(
            app_id=app_id, origin=origin, n=sizes.n, rate=sizes.rate, timeout=60
        )
        if proxy is not None:
            result["bad"].update(bad_figures(result["bad"]["tag"]))
    finally:
        if proxy is not None:
            proxy.close()  # ends every held connection: its attempts end and are recorded
    if proxy is not None:
        set_aside(result["bad"]["tag"])
    return result


def run(stack, *, app_id: str, config, sizes, progress) -> dict:
    """Every case of CASES on one worker of ``config``; the healthy figures of each against
    the case with no bad endpoint."""
    from .stack import start_worker

    start_worker(stack, pool=config.pool, concurrency=config.concurrency)
    cases = {}
    for case in CASES:
        progress.set_postfix_str(f"noisy: {case}")
        cases[case] = run_case(stack, case, app_id=app_id, sizes=sizes)
        progress.update()
    stack.stop("worker")
    base = cases["none"]["burst"]["rate"]
    for case in CASES[1:]:
        rate = cases[case]["burst"]["rate"]
        cases[case]["throughput_ratio"] = round(rate / base, 3) if rate and base else None
    return {
        "pool": str(config),
        "bad_n": sizes.bad_n,
        "drip_interval": sizes.drip_interval,
        "cases": cases,
    }
