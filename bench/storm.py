"""Scenario 5, retry storm: N notifications whose receiver answers 503, until every one has
been attempted three times; the worker's peak RSS (all its processes) and Redis'
``used_memory`` then, compared between a small and a large N. What waits for a retry must
wait in the database, not in the broker or the worker's memory.

The worker runs the documented default pool with the real retry schedule compressed by
``NOTIFY_TIME_SCALE`` (so three rounds take seconds, not minutes); beat is played by the
driver, which sends the real ``notifications.sweep`` task every ``NOTIFY_SWEEP_INTERVAL``.
"""

import threading
import time
import uuid

from django.db import transaction

from .common import EVENT_TYPE, recharge_data
from .probe import MemorySampler, wait_until

ROUNDS = 3


def run_one(stack, *, n: int, app_id: str, config, env: dict, timeout: float, progress) -> dict:
    """One storm of ``n`` on a fresh worker; memory figures after ``ROUNDS`` attempts each."""
    import redis

    from notifications.models import Notification
    from notifications.services import notification_create
    from notifications.tasks import sweep

    client = redis.Redis.from_url(stack.redis_url)
    client.flushdb()
    stack.start_worker(pool=config.pool, concurrency=config.concurrency, **env)
    tag = f"ST{uuid.uuid4().hex[:6]}"
    url = f"{stack.receiver_url}/503/{tag}/"
    rows = Notification.objects.filter(target_url=url)
    behind = rows.filter(attempt_count__lt=ROUNDS)
    stop_beat = threading.Event()
    interval = float(env.get("NOTIFY_SWEEP_INTERVAL", 15))

    def beat():
        while not stop_beat.wait(interval):
            sweep.apply_async()

    with MemorySampler(processes=stack.worker_processes, client=client) as memory:
        idle_rss, idle_redis = memory.last_rss, memory.last_redis
        started = time.perf_counter()
        with transaction.atomic():
            for number in range(n):
                notification_create(
                    sender_key=app_id,
                    subject=f"{tag}-{number}",
                    event_type=EVENT_TYPE,
                    target_url=url,
                    data=recharge_data(tag, number),
                )
        beat_thread = threading.Thread(target=beat, daemon=True)
        beat_thread.start()
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

        try:
            finished = wait_until(done, timeout=timeout, interval=0.2, what=f"{ROUNDS} rounds")
        finally:
            stop_beat.set()
            beat_thread.join()
        memory.sample()
        end_rss, end_redis = memory.last_rss, memory.last_redis
    attempts = sum(rows.values_list("attempt_count", flat=True))
    waiting_in_broker = client.llen("notifications") + client.hlen("unacked")
    stack.stop_worker()
    # Out of the way of later scenarios: nothing more is to be sent for these.
    rows.update(state=Notification.State.EXHAUSTED, broker_eta=None)
    client.flushdb()
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


def run(
    stack, *, sizes: list[int], app_id: str, config, env: dict, timeout: float, progress, on_storm
):
    storms = []
    for n in sorted(sizes):
        storms.append(
            run_one(
                stack,
                n=n,
                app_id=app_id,
                config=config,
                env=env,
                timeout=timeout,
                progress=progress,
            )
        )
        on_storm()
    small, large = storms[0], storms[-1]
    return {
        "rounds": ROUNDS,
        "pool": str(config),
        "env": env,
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
