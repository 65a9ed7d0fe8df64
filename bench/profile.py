"""``python -m bench.profile``: where one notification's time goes, sender and receiver side.

In this process, on the benchmark's own stack (fresh database, private Redis, the minimal
receiver): N notifications due to the minimal receiver, delivered by the dispatcher's cycle
(``notifications.delivery``: claim up to ``NOTIFY_CLAIM_BATCH``, send them concurrently on one
event loop and aiohttp session kept across cycles, record them in one transaction), then N
notifications POSTed to ``/api/accounts/notify/`` through Django's test client (all
applied), then the same N again (all duplicates). Half of each is timed (milliseconds of CPU
and of wall time per notification or request, printed), the other half profiled with
pyinstrument, each profile written as text to
``bench/results/<UTC timestamp>-profile-<name>.txt``. No Celery, no gunicorn, no dispatcher
threads: what is left is our code, the ORM and the database round trips, which is what the
throughput scenarios' "Where the CPU goes" table attributes to the worker and web processes.
"""

import argparse
import asyncio
import math
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from .stack import BENCH_VAR, close_bench, fresh_stack, start_bench

RESULTS = Path(__file__).resolve().parent / "results"


def timed(name: str, calls, *, directory: Path, stem: str) -> dict:
    """Run the first half of ``calls`` timed (CPU and wall ms per item: a call returns how
    many items it handled, None for one), the second half under pyinstrument (which slows
    what it watches), its text written to ``<directory>/<stem>-profile-<name>.txt``."""
    from pyinstrument import Profiler

    half = len(calls) // 2
    cpu, wall = time.process_time(), time.perf_counter()
    items = sum(1 if (handled := call()) is None else handled for call in calls[:half])
    figures = {
        "items": items,
        "cpu_ms": round((time.process_time() - cpu) * 1000 / items, 3),
        "wall_ms": round((time.perf_counter() - wall) * 1000 / items, 3),
    }
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for call in calls[half:]:
        call()
    profiler.stop()
    path = directory / f"{stem}-profile-{name}.txt"
    path.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    figures["profile"] = str(path)
    return figures


def due_notifications(*, n: int, receiver_url: str, app_id: str) -> None:
    """N notifications due now to the minimal receiver, committed together."""
    from django.db import transaction

    from notifications.services import notification_create

    from .common import EVENT_TYPE, recharge_data

    tag = f"PS{uuid.uuid4().hex[:6]}"
    with transaction.atomic():
        for number in range(n):
            notification_create(
                sender_key=app_id,
                subject=f"{tag}-{number}",
                event_type=EVENT_TYPE,
                target_url=f"{receiver_url}/notify/",
                data=recharge_data(tag, number),
            )


def dispatch_cycle(runner: asyncio.Runner, session, *, limit: int) -> int:
    """One turn of the dispatcher's pump, in this thread: claim up to ``limit`` due
    attempts (one endpoint: at most its cap), send them concurrently on ``runner``'s loop
    with ``session``, record them; how many."""
    from django.utils import timezone

    from notifications import delivery

    async def send_all(claimed):
        return await asyncio.gather(*(delivery.attempt_send(session, c) for c in claimed))

    claimed = delivery.deliveries_claim(limit=limit)
    started = timezone.now()
    results = runner.run(send_all(claimed))
    delivery.attempts_record([(c, r, started) for c, r in zip(claimed, results, strict=True)])
    return len(claimed)


def profile_dispatch(*, n: int, receiver_url: str, app_id: str, directory, stem) -> dict:
    """``timed`` figures of the dispatcher's cycle delivering N notifications."""
    from notifications import http
    from notifications.conf import notify_settings

    due_notifications(n=n, receiver_url=receiver_url, app_id=app_id)
    batch = notify_settings.CLAIM_BATCH

    async def new_session():
        return http.client_session(connect_timeout=notify_settings.CONNECT_TIMEOUT)

    with asyncio.Runner() as runner:
        session = runner.run(new_session())
        # One endpoint: a cycle claims up to its cap of requests in flight, not a whole batch.
        cap = min(batch, notify_settings.ENDPOINT_MAX_IN_FLIGHT)
        cycles = [lambda: dispatch_cycle(runner, session, limit=batch)] * math.ceil(n / cap)
        try:
            return timed("dispatch", cycles, directory=directory, stem=stem)
        finally:
            runner.run(session.close())


def notify_posts(items: list[tuple[str, dict]]) -> list:
    """One test-client POST of each pre-signed ``(body, headers)`` to the notify endpoint."""
    from django.test import Client

    client = Client()

    def post(body: str, headers: dict):
        response = client.post(
            "/api/accounts/notify/",
            data=body,
            content_type="application/json",
            **{f"HTTP_{name.upper().replace('-', '_')}": value for name, value in headers.items()},
        )
        if response.status_code != 200:
            raise RuntimeError(f"notify answered {response.status_code}: {response.content!r}")

    return [lambda item=item: post(*item) for item in items]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument(
        "-n", type=int, default=1000, help="notifications of each kind (half timed)"
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.results.mkdir(parents=True, exist_ok=True)
    stem = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    # No throttle limit, as in the throughput scenario (its Redis round trip stays).
    stack = fresh_stack(
        log_dir=BENCH_VAR / "profile-logs",
        settings={"ACCOUNTS_NOTIFY_THROTTLE_RATE": "100000000/min"},
    )
    try:
        app_id = start_bench(stack)
        from .receipt import prepare

        items = prepare(n=args.n, tag=f"PR{uuid.uuid4().hex[:6]}")
        figures = {
            "dispatch": profile_dispatch(
                n=args.n,
                receiver_url=stack.url("receiver"),
                app_id=app_id,
                directory=args.results,
                stem=stem,
            )
        }
        for name in ("notify-applied", "notify-duplicate"):
            figures[name] = timed(name, notify_posts(items), directory=args.results, stem=stem)
    finally:
        close_bench(stack)
    print("| per notification or request | CPU ms | wall ms | profile |\n|---|--:|--:|---|")
    for name, row in figures.items():
        print(f"| {name} | {row['cpu_ms']:.2f} | {row['wall_ms']:.2f} | {row['profile']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
