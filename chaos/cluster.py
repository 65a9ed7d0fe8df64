"""``python -m chaos.cluster``: the network scenarios (13-18, 20, 21) on a simulated cluster.

    python -m chaos.cluster --only 13,14 --small --json out.json
    python -m chaos.cluster --throughput --orders 300 --endpoints 1,8 --json out.json

One ``devstack.cluster.Cluster`` serves every scenario of the run: its own PostgreSQL (the
template migrated once, a fresh copy per scenario) and Redis, and when this environment's
``CELERY_BROKER_URL`` names RabbitMQ a RabbitMQ node of its own on the broker host as the
broker (each scenario in a namespace of its own there), each scenario's processes on their
hosts, the receiver proxy on the harness's address. ``python -m chaos`` runs this in
a process of its own for the network scenarios it is asked for (this process's Django
points at the cluster's database) and merges the outcomes into its table. Where namespaces
are not available every scenario is skipped with the reason. ``--throughput``: N
notifications due at once (``--orders``), spread over K endpoints (``--endpoints``, a list
of K, default 1: accounts' one), delivered by one worker host, then by two: the scaling
ratio for each K. Exit status 0 when every scenario ran clean or was skipped.
"""

import argparse
import json
import signal
import sys
from dataclasses import replace
from pathlib import Path

from config.broker import broker_is_redis
from devstack.broker import environment_broker_url
from devstack.cluster import FAKETIME, Cluster, ClusterStack, unavailable
from devstack.database import ClonedDatabase
from devstack.proxy import FaultProxy
from devstack.stack import django_setup
from devstack.table import table as markdown_table

from .harness import CHAOS_VAR, FULL, SMALL, Outcome, Scenario, run_scenario
from .scenarios import BY_KEY
from .scenarios.network import throughput_scenarios


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m chaos.cluster")
    parser.add_argument("--only", default="", help="comma-separated network scenario keys")
    parser.add_argument("--throughput", action="store_true", help="one, then two worker hosts")
    parser.add_argument(
        "--endpoints",
        default="1",
        help="comma-separated counts of receivers the throughput's notifications go to",
    )
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--orders", type=int)
    parser.add_argument("--json", metavar="PATH", required=True)
    return parser.parse_args(argv)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_on_cluster(scenarios: list[Scenario], *, sizes) -> list[Outcome]:
    """Every scenario on one cluster (removed at the end, whatever happens)."""
    from .__main__ import TEMPLATE_ENV, build_template

    with Cluster(log_dir=CHAOS_VAR / "logs" / "cluster", rabbitmq=on_rabbitmq()) as cluster:
        database = ClonedDatabase(
            base_url=cluster.database_url(),
            name="recharge_chaos",
            sqlite_dir=CHAOS_VAR,
            owner="the cluster run",
        )
        # The dev merchant's notify_url (the proxy) and return_url (web) are on cluster hosts.
        hosts = f"127.0.0.1,localhost,{cluster.harness_address},{cluster.addresses['web']}"
        build_template(
            database, users=sizes.users, settings={"PAYMENTS_DEFAULT_ALLOWED_HOSTS": hosts}
        )
        django_setup({**TEMPLATE_ENV, "DJANGO_DEBUG": "0", "DATABASE_URL": database.url})

        def make_stack(**kw):
            return ClusterStack(cluster=cluster, **kw)

        outcomes = []
        for scenario in scenarios:
            receiver = FaultProxy(
                host=cluster.harness_address, upstream_host=cluster.addresses["web"]
            )
            outcomes.append(
                run_scenario(
                    scenario,
                    sizes=sizes,
                    database=database,
                    receiver=receiver,
                    make_stack=make_stack,
                )
            )
        from django.db import connections

        connections.close_all()
        return outcomes


def on_rabbitmq() -> bool:
    """Whether this environment's broker is RabbitMQ: the cluster then runs a node of its own
    (the URL's own node is not used: the hosts could not reach it)."""
    url = environment_broker_url()
    return bool(url) and not broker_is_redis(url)


def missing(scenario: Scenario) -> str:
    """What this machine lacks for ``scenario`` ("" when nothing): libfaketime for a skewed
    clock (``apt-get install faketime``)."""
    skews = any(name.startswith("CLUSTER_FAKETIME_") for name in scenario.env)
    if skews and not Path(FAKETIME).exists():
        return f"skipped: no libfaketime at {FAKETIME} (apt-get install faketime)"
    return ""


def scaling(outcomes: list[Outcome]) -> str:
    """The throughput table: notifications per second with one and two worker hosts, for
    each count of endpoints (``outcomes`` in pairs: one host, then two)."""
    rates = [o.notifications / o.settle_seconds if o.settle_seconds else 0.0 for o in outcomes]
    rows = [
        (o.title, o.notifications, f"{o.settle_seconds or 0:.1f}s", f"{rate:.1f}")
        for o, rate in zip(outcomes, rates, strict=True)
    ]
    ratios = [
        f"scaling ratio (two / one){two.title.removeprefix('throughput, two worker hosts')}: "
        f"{rate_two / rate_one if rate_one else 0.0:.2f}"
        for two, rate_one, rate_two in zip(outcomes[1::2], rates[::2], rates[1::2], strict=True)
    ]
    headers = ("run", "notifications", "delivered in", "per second")
    return "\n".join([markdown_table(headers, rows, "lrrr"), "", *ratios])


def main(argv=None) -> int:
    args = parse_args(argv)
    sizes = SMALL if args.small else FULL
    if args.orders:
        sizes = replace(sizes, orders=args.orders)
    keys = [key.strip() for key in args.only.split(",") if key.strip()]
    wrong = [key for key in keys if key not in BY_KEY or not BY_KEY[key].network]
    if wrong:
        print(f"not network scenarios: {', '.join(wrong)}", file=sys.stderr)
        return 2
    counts = [int(count) for count in args.endpoints.split(",") if count.strip()]
    throughput = [s for k in counts for s in throughput_scenarios(k)] if args.throughput else []
    scenarios = [BY_KEY[key] for key in keys] + throughput
    reason = unavailable(rabbitmq=on_rabbitmq())
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if reason:
            skipped = f"skipped: {reason}"
            outcomes = [Outcome(key=s.key, title=s.title, skipped=skipped) for s in scenarios]
        else:
            runnable = [s for s in scenarios if not missing(s)]
            ran = {o.key: o for o in run_on_cluster(runnable, sizes=sizes)} if runnable else {}
            outcomes = [
                ran.get(s.key) or Outcome(key=s.key, title=s.title, skipped=missing(s))
                for s in scenarios
            ]
    except KeyboardInterrupt:
        print("\nchaos.cluster: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    if args.throughput and not reason:
        print(scaling(outcomes[-len(throughput) :]))
    with open(args.json, "w") as out:
        json.dump({"outcomes": [o.as_dict() for o in outcomes]}, out, indent=2)
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
