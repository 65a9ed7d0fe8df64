"""Scenario 8: reconciliation alone closes every recharge, through a restart of the accounts
side and an outage of the payments API."""

import time
from collections import Counter

from devstack.proxy import FaultProxy
from devstack.settle import wait_until
from devstack.shoppers import plan_orders

from ..harness import DRIVE_TIMEOUT, ChaosRun, Scenario


def reconciliation_interrupted(run: ChaosRun) -> None:
    """8. Every notification is acknowledged and dropped by the receiver proxy, so only
    reconciliation can close the recharges. Mid-reconciliation the accounts side (web and
    worker) is SIGKILLed and restarted; later the payments API (behind a proxy of its own)
    becomes unreachable for a while, then returns."""
    from accounts.models import LedgerEntry, Recharge

    def reconciled() -> int:
        return Recharge.objects.filter(closed_by=LedgerEntry.Source.RECONCILIATION).count()

    sizes = run.sizes
    run.receiver.drop = 1.0
    with FaultProxy(upstream=run.stack.payments_url) as payments_proxy:
        run.stack.env["ACCOUNTS_PAYMENTS_API_URL"] = payments_proxy.url
        run.start("web", "payments", "worker")
        state = run.drive(plan_orders(sizes.orders, seed=9)).wait(timeout=DRIVE_TIMEOUT)
        total = len(state.tx_nos)
        # Each query takes a while, so that reconciling everything takes some seconds and
        # the faults land in the middle of it.
        concurrency = int(run.env["WORKER_CONCURRENCY"])
        payments_proxy.latency = max(0.05, sizes.reconcile_span * concurrency / max(total, 1))
        run.start("beat")
        run.say("reconciliation started")
        wait_until(lambda: reconciled() >= 0.2 * total, timeout=120, interval=0.05, what="20%")
        at_restart = reconciled()
        run.stack.kill("worker")
        run.stack.kill("web")
        run.say(f"accounts side (web, worker) SIGKILLed at {at_restart}/{total} reconciled")
        time.sleep(1.0)
        run.start("web", "worker")
        wait_until(lambda: reconciled() >= 0.5 * total, timeout=120, interval=0.05, what="50%")
        payments_proxy.set_mode("refuse")
        run.stack.kill("payments")
        down = time.time()
        run.say(f"payments API unreachable at {reconciled()}/{total} reconciled")
        # Answers already on their way back when the API went are still applied; after
        # that, nothing may close while payments is unreachable.
        grace = payments_proxy.latency + 1.0
        time.sleep(grace)
        at_outage = reconciled()
        time.sleep(max(0.0, sizes.outage - grace))
        at_return = reconciled()
        run.start("payments")
        payments_proxy.set_mode("forward")
        run.end_fault()
        run.say(f"payments API back after {time.time() - down:.1f}s")
        run.settle()
        queries = Counter(
            s.path for s in payments_proxy.seen if s.method == "GET" and s.status == 200
        )
    run.figures()
    run.check_drive(state)
    run.check(
        "the restart came mid-reconciliation", 0 < at_restart < total, f"{at_restart}/{total}"
    )
    run.check("the outage came mid-reconciliation", at_outage < total, f"{at_outage}/{total}")
    run.check(
        "nothing was reconciled while payments was unreachable",
        at_return == at_outage,
        f"{at_outage} -> {at_return}",
    )
    closed = reconciled()
    run.check("every recharge closed by reconciliation", closed == total, f"{closed}/{total}")
    run.note(
        f"accounts restarted at {at_restart}/{total}, payments API down "
        f"{sizes.outage:.0f}s at {at_outage}/{total}; {closed} recharges reconciled with "
        f"{sum(queries.values())} answered queries (max {max(queries.values(), default=0)} "
        f"per recharge); {run.outcome.injected.get('dropped', 0)} notifications dropped"
    )


SCENARIOS = [
    Scenario(
        "8",
        "accounts restart + payments API down mid-reconciliation",
        reconciliation_interrupted,
        {
            "ACCOUNTS_RECONCILE_AFTER": "2",
            "ACCOUNTS_RECONCILE_BATCH": "25",
            "ACCOUNTS_API_TIMEOUT": "2",
        },
    ),
]
