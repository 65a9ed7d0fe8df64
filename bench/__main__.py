"""``python -m bench`` (``make bench``): every scenario against its baseline in one run.

Starts its own stack (a fresh database: ``recharge_bench`` on the PostgreSQL server of
``DATABASE_URL`` when it names one, else SQLite under var/bench/; a private Redis; the
Procfile's web and payments gunicorns; the minimal receiver; a Celery worker per pool under
test), runs the scenarios with a progress bar on stderr, prints a Markdown table on stdout
and writes ``bench/results/<UTC timestamp>.json``, ``.md`` and ``.png``. See README
"Performance". Every size is a flag; the defaults finish within about 10 minutes on a
2-core machine.
"""

import argparse
import contextlib
import functools
import os
import platform
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from devstack.stack import Stack

from . import report
from .cpu import CpuMeter
from .pools import PoolConfig
from .stack import BENCH_VAR, CIRCUIT_OFF, close_bench, fresh_stack, start_bench, start_worker

SCENARIOS = ("sender", "slow", "noisy", "dead", "receiver", "latency", "storm", "scan", "prune")
RESULTS = Path(__file__).resolve().parent / "results"


def sizes(text: str) -> list[int]:
    return [int(float(part)) for part in text.replace("_", "").split(",") if part.strip()]


def pool_configs(text: str) -> list[PoolConfig]:
    """``--pools`` as PoolConfigs: ``"prefork:4,threads:8"`` → two."""
    return [PoolConfig.parse(part) for part in text.split(",") if part.strip()]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {SCENARIOS}"
    )
    group = parser.add_argument_group("1. sender throughput")
    group.add_argument("--sender-n", type=int, default=3000, help="notifications per contender")
    group.add_argument(
        "--pools",
        default="prefork:2,prefork:4,threads:8,solo",
        help="worker pool:concurrency configurations to try (also in 'slow'), comma-separated; "
        "the first is the default pool the other scenarios use",
    )
    group = parser.add_argument_group("slow receivers (250 ms)")
    group.add_argument("--slow-n", type=int, default=3000, help="ours, thread pool")
    # The bare task and django-webhook hold one request in flight per pool process: fewer.
    group.add_argument("--slow-celery-n", type=int, default=200, help="bare task, django-webhook")
    # django-signal-webhooks spends ~70 ms of CPU per event (a thread, an event loop and an
    # httpx client each): fewer too.
    group.add_argument("--slow-signal-n", type=int, default=400, help="django-signal-webhooks")
    group.add_argument("--slow-delay-ms", type=int, default=250)
    group.add_argument(
        "--signal-threads",
        type=int,
        default=32,
        help="django-signal-webhooks' threads alive at once, at most (each opens a database "
        "connection; see bench.peers.signal_fire)",
    )
    group = parser.add_argument_group("noisy neighbour")
    group.add_argument("--noisy-n", type=int, default=300, help="healthy orders paid, per case")
    group.add_argument(
        "--noisy-rate", type=float, default=20.0, help="healthy orders paid a second"
    )
    group.add_argument(
        "--noisy-burst", type=int, default=1000, help="healthy notifications committed at once"
    )
    group.add_argument(
        "--noisy-bad-n", type=int, default=1000, help="notifications due to the bad endpoint"
    )
    group.add_argument(
        "--drip-interval", type=float, default=2.0, help="seconds between dripped bytes"
    )
    group = parser.add_argument_group("dead endpoint cost")
    group.add_argument("--dead-n", type=int, default=1000, help="notifications due to it")
    group.add_argument("--dead-window", type=float, default=15.0, help="seconds measured")
    group.add_argument("--dead-warmup", type=float, default=3.0, help="seconds of retries first")
    group = parser.add_argument_group("2. receiver throughput")
    group.add_argument("--receiver-n", type=int, default=2000)
    group.add_argument("--receiver-clients", type=int, default=16, help="concurrent requests")
    group = parser.add_argument_group("3. latency")
    group.add_argument("--latency-n", type=int, default=300, help="orders, one at a time")
    group = parser.add_argument_group("4. scan cost")
    group.add_argument("--scan-sizes", type=sizes, default=[10_000, 100_000, 1_000_000])
    group.add_argument("--scan-due", type=int, default=100, help="rows due at every size")
    group.add_argument("--scan-ticks", type=int, default=3, help="ticks per size (median)")
    group = parser.add_argument_group("5. retry storm")
    group.add_argument(
        "--storm-sizes",
        type=sizes,
        default=[1_000, 20_000],
        help="notifications per storm, smallest and largest compared",
    )
    group.add_argument(
        "--storm-time-scale",
        type=float,
        default=0.1,
        help="NOTIFY_TIME_SCALE for the storm's worker (the real schedule, compressed)",
    )
    group = parser.add_argument_group("6. prune cost")
    group.add_argument(
        "--prune-sizes",
        type=sizes,
        default=[100_000, 1_000_000],
        help="prunable notifications, smallest and largest compared",
    )
    group.add_argument(
        "--prune-batch", type=int, default=1000, help="notifications per batch (NOTIFY_PRUNE_BATCH)"
    )
    group.add_argument("--prune-batches", type=int, default=5, help="batches per size (median)")
    group.add_argument(
        "--prune-attempts", type=int, default=2, help="attempt rows per notification"
    )
    group = parser.add_argument_group("common")
    group.add_argument(
        "--origins", type=int, default=16, help="receiver origins (endpoints) of the echo server"
    )
    group.add_argument(
        "--pool",
        default=None,
        help="pool:concurrency for latency and storm (default: the first of --pools, the "
        "Procfile's prefork with WORKER_CONCURRENCY 2)",
    )
    group.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting's environment variable for every process, e.g. DB_CONN_MAX_AGE=60 "
        "(repeatable)",
    )
    group.add_argument("--timeout", type=float, default=300, help="seconds per step")
    group.add_argument("--results", type=Path, default=RESULTS, help="output directory")
    group.add_argument(
        "--keep-db", action="store_true", help="leave recharge_bench on PostgreSQL afterwards"
    )
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    if any("=" not in setting for setting in args.settings):
        parser.error("--set takes NAME=VALUE")
    args.settings = dict(setting.split("=", 1) for setting in args.settings)
    unknown = set(args.only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; choose from {SCENARIOS}")
    return args


class LoadWatch:
    """The 1-minute load average at start, end, and its highest in between."""

    def __init__(self):
        self.start = os.getloadavg()
        self.highest = self.start[0]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(2):
            self.highest = max(self.highest, os.getloadavg()[0])

    def finish(self) -> dict:
        self._stop.set()
        end = os.getloadavg()
        return {"start": self.start, "end": end, "max_1min": max(self.highest, end[0])}


class Phases:
    """Seconds each scenario took: ``with phases("sender"): ...``."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - started, 1)


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        memory = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        memory = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def database_description() -> str:
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            return f"PostgreSQL {cursor.fetchone()[0].split()[0]}"
    if connection.vendor == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    return connection.vendor


def redis_description(stack: Stack) -> str | None:
    """The version of the stack's Redis, None when it does not answer."""
    try:
        with stack.redis() as client:
            return client.info("server")["redis_version"]
    except Exception:  # noqa: BLE001 - a failed run's report still gets written
        return None


@dataclass
class Context:
    """What every scenario runner gets: the arguments, the started stack, the merchant whose
    notifications are sent, the pool for latency and storm, the progress bar."""

    args: argparse.Namespace
    stack: Stack
    app_id: str
    pool: PoolConfig
    bar: tqdm


def run_sender(ctx: Context) -> dict:
    from . import sender

    fixture = sender.prepare(stack=ctx.stack, app_id=ctx.app_id)
    configs = []
    for config in pool_configs(ctx.args.pools):
        ctx.bar.set_postfix_str(f"sender: starting a {config} worker")
        try:
            start_worker(ctx.stack, pool=config.pool, concurrency=config.concurrency)
        except RuntimeError as exc:
            configs.append(
                {"pool": config.pool, "concurrency": config.concurrency, "error": str(exc)}
            )
        else:
            configs.append(
                sender.run_config(
                    fixture,
                    config,
                    n=ctx.args.sender_n,
                    timeout=ctx.args.timeout,
                    progress=ctx.bar,
                    meter=lambda: CpuMeter(ctx.stack),
                )
            )
        ctx.bar.update()
    ctx.stack.stop("worker")
    return {"n": ctx.args.sender_n, "configs": configs}


def run_slow(ctx: Context) -> dict:
    from types import SimpleNamespace

    from . import slow

    args = ctx.args
    sizes = SimpleNamespace(
        n=args.slow_n,
        celery_n=args.slow_celery_n,
        signal_n=args.slow_signal_n,
        delay_ms=args.slow_delay_ms,
        signal_threads=args.signal_threads,
        timeout=args.timeout,
    )
    return slow.run(
        ctx.stack,
        app_id=ctx.app_id,
        configs=pool_configs(args.pools),
        sizes=sizes,
        progress=ctx.bar,
        meter=lambda: CpuMeter(ctx.stack),
    )


# The scenarios that run on the default pool only: each size they take, by the argument
# that sets it.
DEFAULT_POOL_SIZES = {
    "noisy": {
        "n": "noisy_n",
        "rate": "noisy_rate",
        "burst": "noisy_burst",
        "bad_n": "noisy_bad_n",
        "drip_interval": "drip_interval",
    },
    "dead": {"n": "dead_n", "window": "dead_window", "warmup": "dead_warmup"},
}


def run_on_default_pool(scenario: str, ctx: Context) -> dict:
    """``bench.<scenario>.run`` on the default pool, with its sizes (DEFAULT_POOL_SIZES)."""
    import importlib
    from types import SimpleNamespace

    names = DEFAULT_POOL_SIZES[scenario]
    sizes = SimpleNamespace(**{name: getattr(ctx.args, arg) for name, arg in names.items()})
    module = importlib.import_module(f"bench.{scenario}")
    return module.run(ctx.stack, app_id=ctx.app_id, config=ctx.pool, sizes=sizes, progress=ctx.bar)


def run_receiver(ctx: Context) -> dict:
    from . import receipt

    result = receipt.run(
        web_url=ctx.stack.web_url,
        n=ctx.args.receiver_n,
        clients=ctx.args.receiver_clients,
        timeout=ctx.args.timeout,
        progress=ctx.bar,
        meter=lambda: CpuMeter(ctx.stack),
    )
    ctx.bar.update()
    return result


def run_latency(ctx: Context) -> dict:
    from . import latency

    ctx.bar.set_postfix_str(f"latency: starting a {ctx.pool} worker")
    start_worker(ctx.stack, pool=ctx.pool.pool, concurrency=ctx.pool.concurrency)
    result = latency.run(
        web_url=ctx.stack.web_url,
        redis_url=ctx.stack.redis_url,
        app_id=ctx.app_id,
        n=ctx.args.latency_n,
        timeout=30,
        progress=ctx.bar,
    )
    ctx.stack.stop("worker")
    ctx.bar.update()
    return result


def run_storm(ctx: Context) -> dict:
    from django.conf import settings

    from . import storm

    # The deployed schedule and sweep interval, compressed alike (beat's resolution is 1 s),
    # so the same steps wait where they would; the circuit held closed, so they are taken.
    scale = ctx.args.storm_time_scale
    storm_env = {
        "NOTIFY_TIME_SCALE": scale,
        "NOTIFY_SWEEP_INTERVAL": max(1.0, settings.NOTIFY_SWEEP_INTERVAL * scale),
        **CIRCUIT_OFF,
    }
    return storm.run(
        ctx.stack,
        sizes=ctx.args.storm_sizes,
        app_id=ctx.app_id,
        config=ctx.pool,
        env=storm_env,
        timeout=ctx.args.timeout * 3,
        progress=ctx.bar,
        on_storm=ctx.bar.update,
    )


def run_scan(ctx: Context) -> dict:
    from django.contrib.auth import get_user_model

    from accounts.services import account_create
    from payments.models import Merchant

    from . import scan

    def drop_queue() -> None:  # no worker runs here: the sweeper's messages are discarded
        with ctx.stack.redis() as client:
            client.delete(ctx.stack.broker_key("notifications"))

    user = get_user_model().objects.create_user("bench-scan")
    result = scan.run(
        merchant=Merchant.objects.get(app_id=ctx.app_id),
        account=account_create(user=user, currency="CNY"),
        sizes=ctx.args.scan_sizes,
        due=ctx.args.scan_due,
        ticks=ctx.args.scan_ticks,
        progress=ctx.bar,
        after_tick=drop_queue,
    )
    ctx.bar.update()
    return result


def run_prune(ctx: Context) -> dict:
    from . import prune

    result = prune.run(
        app_id=ctx.app_id,
        sizes=ctx.args.prune_sizes,
        batch_size=ctx.args.prune_batch,
        batches=ctx.args.prune_batches,
        attempts=ctx.args.prune_attempts,
        progress=ctx.bar,
    )
    ctx.bar.update()
    return result


RUNNERS = {
    "sender": run_sender,
    "slow": run_slow,
    "noisy": functools.partial(run_on_default_pool, "noisy"),
    "dead": functools.partial(run_on_default_pool, "dead"),
    "receiver": run_receiver,
    "latency": run_latency,
    "storm": run_storm,
    "scan": run_scan,
    "prune": run_prune,
}


def step_count(args) -> int:
    """Progress steps: one per sender pool and storm size, one per other scenario."""
    counts = {
        "sender": len(pool_configs(args.pools)),
        "slow": len(pool_configs(args.pools)),
        "noisy": 3,
        "dead": 5,
        "storm": len(args.storm_sizes),
    }
    return sum(counts.get(name, 1) for name in args.only)


def stop_on_signals() -> None:
    """SIGTERM, and SIGINT even where a shell started us in the background with it ignored,
    end the run through ``finally``: the stack's processes run in sessions of their own and
    would otherwise outlive us."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv=None) -> int:
    args = parse_args(argv)
    stop_on_signals()
    started = time.perf_counter()
    load = LoadWatch()
    phases = Phases()
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    log_dir = BENCH_VAR / "logs"
    stack = fresh_stack(
        log_dir=log_dir,
        origins=args.origins,
        # The notify throttle stays in the path (its Redis round trip is measured) but never
        # limits.
        settings={"ACCOUNTS_NOTIFY_THROTTLE_RATE": "100000000/min", **args.settings},
    )
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    bar = tqdm(total=step_count(args) + 1, desc="bench", unit="step", file=sys.stderr)
    failed = False
    try:
        bar.set_postfix_str("starting the stack")
        with phases("stack start"):
            app_id = start_bench(stack)
        bar.update()
        pool = PoolConfig.parse(args.pool) if args.pool else pool_configs(args.pools)[0]
        results["pool_used"] = str(pool)
        ctx = Context(args=args, stack=stack, app_id=app_id, pool=pool, bar=bar)
        for name in SCENARIOS:
            if name in args.only:
                with phases(name):
                    results[name] = RUNNERS[name](ctx)
    except (KeyboardInterrupt, SystemExit):
        print("\nbench: interrupted; stopping the stack", file=sys.stderr)
        failed = True
    except Exception:  # report what was measured so far, then fail
        traceback.print_exc()
        print(f"bench: FAILED (logs: {log_dir}/)", file=sys.stderr)
        failed = True
    finally:
        bar.set_postfix_str("stopping the stack")
        database = database_description() if "django" in sys.modules else stack.env["DATABASE_URL"]
        redis_version = redis_description(stack)
        close_bench(stack, keep_db=args.keep_db)
        bar.close()
    results["meta"] = {
        "timestamp": timestamp,
        "seconds": round(time.perf_counter() - started, 1),
        "scenario_seconds": phases.seconds,
        "machine": machine(),
        "database": database,
        "redis_version": redis_version,
        "load": load.finish(),
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "failed": failed,
    }
    if any(key in results for key in SCENARIOS):
        paths = report.write(results, args.results)
        print(report.markdown(results))
        print("\n".join(f"{kind}: {path}" for kind, path in paths.items()), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
