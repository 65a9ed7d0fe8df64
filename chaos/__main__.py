"""``python -m chaos`` (``make chaos``): every fault scenario against the real stack, one table.

    python -m chaos                      # all scenarios, 500 orders each
    python -m chaos --only 1,4 --orders 200
    python -m chaos --small              # the sizes ``make test`` uses

``DATABASE_URL`` naming PostgreSQL runs on that server in a database of the run's own
(``--database``, default ``recharge_chaos``, and ``<name>_template``, both dropped and
recreated; the database ``DATABASE_URL`` names is never touched); otherwise SQLite under
var/chaos. Every scenario has its own Redis on a free port (never the machine's), its broker
unless ``CELERY_BROKER_URL`` names one (``amqp://…``: RabbitMQ, each scenario in a namespace
of its own, its queues deleted afterwards; the Redis-only scenarios are skipped, and on
Redis the RabbitMQ-only ones, 2c, 2d and 5b). Logs:
var/chaos/logs/<scenario>/. Exit status 0 only when no scenario lost a notification or
credited anything twice and every scenario's checks and final audit passed. The network
scenarios (13-18, 20, 21) run on a simulated cluster of their own (``python -m chaos.cluster``).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import fields, replace
from pathlib import Path

from devstack.database import ClonedDatabase
from devstack.processes import ROOT
from devstack.stack import django_setup, manage, stack_environment
from devstack.table import table as markdown_table

from .harness import CHAOS_VAR, FULL, SMALL, Check, Outcome, run_scenario
from .scenarios import BY_KEY

# The template's settings, and this process's: a Redis nobody listens on, as nothing here
# goes through Django's broker (each scenario has its own Redis and talks to it directly).
TEMPLATE_ENV = {
    "DJANGO_SETTINGS_MODULE": "chaos.settings",
    "DJANGO_DEBUG": "1",  # seed_demo's development merchant and users
    "REDIS_URL": "redis://127.0.0.1:1/0",
    # The beat entries migrate creates: every periodic task each second.
    "NOTIFY_SWEEP_INTERVAL": "1",
    "PAYMENTS_EXPIRE_INTERVAL": "1",
    "ACCOUNTS_RECONCILE_INTERVAL": "1",
}


def build_template(database: ClonedDatabase, *, users: int, settings: dict | None = None) -> None:
    """Create the template: migrated, the dev merchant, users demo1..``users``; ``settings``
    on top of ``TEMPLATE_ENV`` (a cluster's hosts)."""
    database.create_template()
    env = stack_environment(
        {**TEMPLATE_ENV, **(settings or {}), "DATABASE_URL": database.template_url}
    )
    log = CHAOS_VAR / "logs" / "template.log"
    manage(env, "migrate", "--noinput", log_path=log)
    manage(env, "seed_demo", "--users", str(users), log_path=log)


def table(outcomes) -> str:
    rows = [
        (f"{o.key}. {o.title}", *["—"] * 6, "skipped")
        if o.skipped
        else (
            f"{o.key}. {o.title}",
            o.orders,
            o.notifications,
            o.lost,
            o.credited_twice,
            o.beyond,
            "—" if o.settle_seconds is None else f"{o.settle_seconds:.1f}s",
            "ok" if o.ok else "FAILED",
        )
        for o in outcomes
    ]
    headers = (
        "scenario",
        "orders",
        "notifications",
        "lost",
        "credited twice",
        "attempts beyond the minimum",
        "time to settle",
        "verdict",
    )
    return markdown_table(headers, rows, "lrrrrrrl")


def details(outcomes) -> str:
    lines = []
    for o in outcomes:
        if o.skipped:
            lines.append(f"{o.key}. {o.title}: {o.skipped}")
            continue
        lines.append(
            f"{o.key}. {o.title}: {o.attempts} attempts, minimum {o.minimum}, "
            f"{o.delivered}/{o.notifications} notifications delivered; the receiver proxy "
            f"injected {o.injected or 'nothing'}"
        )
        lines += [f"   {note}" for note in o.notes]
        for check in o.checks:
            mark = "ok" if check.ok else "FAILED"
            lines.append(f"   [{mark}] {check.name}{f' ({check.detail})' if check.detail else ''}")
        if o.error:
            lines.append(f"   ERROR: {o.error}")
        for problem in o.problems[:10]:
            lines.append(f"   audit: {problem}")
        if len(o.problems) > 10:
            lines.append(f"   audit: ... and {len(o.problems) - 10} more")
        if not o.ok:
            lines.append(f"   logs: {o.log_dir}")
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated scenario keys (" + ", ".join(BY_KEY) + "); default: all",
    )
    parser.add_argument("--small", action="store_true", help="the small sizes of make test")
    parser.add_argument("--orders", type=int, help="orders per scenario (default 500)")
    parser.add_argument("--burst-orders", type=int, help="notifications burst in scenario 7")
    parser.add_argument("--database", default="recharge_chaos", help="name of the run's database")
    parser.add_argument("--json", metavar="PATH", help="also write the outcomes as JSON")
    return parser.parse_args(argv)


def cluster_outcomes(keys: list[str], *, args) -> list[Outcome]:
    """The network scenarios ``keys``, run by ``python -m chaos.cluster`` in a process of its
    own (its Django points at the cluster's database), as Outcomes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cluster.json"
        command = [sys.executable, "-m", "chaos.cluster", "--only", ",".join(keys)]
        command += ["--json", str(out), *(["--small"] if args.small else [])]
        command += ["--orders", str(args.orders)] if args.orders else []
        subprocess.run(command, cwd=ROOT, check=False)
        if not out.exists():
            return [
                Outcome(key=key, title=BY_KEY[key].title, error="python -m chaos.cluster failed")
                for key in keys
            ]
        found = json.loads(out.read_text())["outcomes"]
    return [outcome_from_dict(found_one) for found_one in found]


def outcome_from_dict(data: dict) -> Outcome:
    """The inverse of ``Outcome.as_dict``."""
    names = {f.name for f in fields(Outcome)}
    outcome = Outcome(**{name: value for name, value in data.items() if name in names})
    outcome.checks = [Check(**check) for check in outcome.checks]
    return outcome


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    args = parse_args(argv)
    sizes = SMALL if args.small else FULL
    if args.orders:
        sizes = replace(sizes, orders=args.orders)
    if args.burst_orders:
        sizes = replace(sizes, burst_orders=args.burst_orders)
    keys = [key.strip() for key in args.only.split(",") if key.strip()] or list(BY_KEY)
    unknown = [key for key in keys if key not in BY_KEY]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    database = ClonedDatabase(
        base_url=os.environ.get("DATABASE_URL"),
        name=args.database,
        sqlite_dir=CHAOS_VAR,
        owner="the chaos run",
    )
    previous = signal.signal(signal.SIGTERM, _interrupt)
    began = time.monotonic()
    outcomes = []
    try:
        print(
            f"chaos: scenarios {', '.join(keys)} on {database.vendor} "
            f"({sizes.orders} orders each); logs under {CHAOS_VAR / 'logs'}",
            file=sys.stderr,
        )
        loopback = [key for key in keys if not BY_KEY[key].network]
        if loopback:
            build_template(database, users=sizes.users)
            django_setup({**TEMPLATE_ENV, "DJANGO_DEBUG": "0", "DATABASE_URL": database.url})
        for key in loopback:
            outcomes.append(run_scenario(BY_KEY[key], sizes=sizes, database=database))
        network = [key for key in keys if BY_KEY[key].network]
        if network:
            outcomes += cluster_outcomes(network, args=args)
    except KeyboardInterrupt:
        print("\nchaos: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # Django never set up
            pass
        database.drop_template()
    print()
    print(table(outcomes))
    print()
    print(details(outcomes))
    ok = all(o.ok for o in outcomes) and len(outcomes) == len(keys)
    print(
        f"\nchaos: {'OK' if ok else 'FAILED'} — {len(outcomes)} scenario(s) on "
        f"{database.vendor} in {time.monotonic() - began:.0f}s"
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(
                {"vendor": database.vendor, "outcomes": [o.as_dict() for o in outcomes]},
                out,
                indent=2,
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
