"""Scenario 5, retry storm: N notifications whose receiver answers 503, until every one has
been attempted three times; the worker's peak RSS (all its processes) and Redis'
``used_memory`` then, compared between a small and a large N. What waits for a retry must
wait in the database, not in the broker or the worker's memory.

The receivers are the echo server's origins (``bench.echo``) answering 503 to everything,
as many merchants' servers would in an outage (one endpoint alone would be held to its cap
of requests in flight); they count the requests they refused. The worker runs the default
pool with the real retry schedule compressed by ``NOTIFY_TIME_SCALE`` (so three rounds take
seconds, not minutes) and the circuit breaker held closed (``stack.CIRCUIT_OFF``: open, it
would let one probe through per wait and the rounds would never end); beat is played by the
driver, which sends the real ``notifications.sweep`` task every ``NOTIFY_SWEEP_INTERVAL``.
"""

import functools
import time
import uuid

from devstack.settle import wait_until

from .contenders import outbox_create
from .echo import answered
from .probe import Beat, MemorySampler
from .stack import echo_origins, start_worker

ROUNDS = 3


def run_one(stack, *, n: int, config, **storm) -> dict:
    """One storm of ``n`` on a fresh worker of pool ``config``; memory figures after
    ``ROUNDS`` attempts each. ``storm``: ``app_id``, ``env`` (the worker's settings),
    ``timeout`` and ``progress``, as ``_storm`` takes them."""
    tag = f"ST{uuid.uuid4().hex[:6]}"
    with stack.redis() as client:
        client.flushdb()
        start_worker(stack, pool=config.pool, concurrency=config.concurrency, **storm["env"])
        urls = [f"{origin}/0/{tag}/notify?status=503" for origin in echo_origins(stack)]
        result = _storm(stack, client, n=n, tag=tag, urls=urls, **storm)
        result["refused_by_receiver"] = answered(echo_origins(stack)[0], tag)["answered"]
        client.flushdb()
    return result


def _storm(
    stack, client, *, n: int, tag: str, urls: list, app_id: str, env: dict, timeout: float, progress
):
    """Create ``n`` notifications to ``urls`` at once, sweep as beat would (every
    ``env["NOTIFY_SWEEP_INTERVAL"]`` s) until each was attempted ``ROUNDS`` times or
    ``timeout`` s passed (WaitTimeout), stop the worker; the figures (dict)."""
    from notifications.models import Notification

    rows = Notification.objects.filter(subject__startswith=f"{tag}-")
    behind = rows.filter(attempt_count__lt=ROUNDS)
    worker = functools.partial(stack.process_tree, "worker")
    with MemorySampler(processes=worker, client=client) as memory:
        idle_rss, idle_redis = memory.last_rss, memory.last_redis
        started, _ = outbox_create(app_id=app_id, urls=urls, n=n, tag=tag)
        last_report = [0.0]

        def done() -> bool:
            if time.perf_counter() - last_report[0] > 1:
                last_report[0] = time.perf_counter()
                progress.set_postfix_str(
                    f"storm {n:,}: {behind.count():,} behind round {ROUNDS}, "
                    f"worker {memory.last_rss / 2**20:.0f} MiB, "
                    f"redis {memory.last_redis / 2**20:.1f} MiB"
                )
                return not behind.exists()
            return False

        with Beat(float(env["NOTIFY_SWEEP_INTERVAL"])):
            wait_until(done, timeout=timeout, interval=0.2, what=f"{ROUNDS} rounds")
            finished = time.time()
        memory.sample()
        end_rss, end_redis = memory.last_rss, memory.last_redis
    attempts = sum(rows.values_list("attempt_count", flat=True))
    waiting_in_broker = sum(stack.broker_backlog("notifications").values())
    stack.stop("worker")
    # Out of the way of later scenarios: nothing more is to be sent for these.
    rows.update(state=Notification.State.EXHAUSTED)
    return {
        "n": n,
        "seconds": round(finished - started, 2),
        "attempts": attempts,
        "attempts_per_second": round(attempts / (finished - started), 1),
        "messages_in_broker_at_end": waiting_in_broker,
        "worker_rss_idle_mib": round(idle_rss / 2**20, 1),
        "worker_rss_peak_mib": round(memory.peak_rss / 2**20, 1),
        "worker_rss_end_mib": round(end_rss / 2**20, 1),
        "redis_used_idle_mib": round(idle_redis / 2**20, 2),
        "redis_used_end_mib": round(end_redis / 2**20, 2),
        "redis_used_peak_mib": round(memory.peak_redis / 2**20, 2),
    }


def run(stack, *, sizes: list[int], on_storm, **storm) -> dict:
    """A storm of each size in ``sizes``, smallest first (``storm``: the other arguments of
    ``run_one``), ``on_storm()`` after each; the figures and the largest/smallest ratios."""
    storms = []
    for n in sorted(sizes):
        storms.append(run_one(stack, n=n, **storm))
        on_storm()
    small, large = storms[0], storms[-1]
    return {
        "rounds": ROUNDS,
        "pool": str(storm["config"]),
        "env": storm["env"],
        "storms": storms,
        "ratios": {
            "worker_rss_peak": round(
                large["worker_rss_peak_mib"] / small["worker_rss_peak_mib"], 3
            ),
            "redis_used_end": round(large["redis_used_end_mib"] / small["redis_used_end_mib"], 3),
            "redis_used_peak": round(
                large["redis_used_peak_mib"] / small["redis_used_peak_mib"], 3
            ),
        },
    }
