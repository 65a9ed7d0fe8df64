"""Scenario 3: the process dies between the commit and the enqueue."""

import json
import subprocess
import sys
from dataclasses import replace

from devstack.processes import ROOT
from devstack.shoppers import plan_orders

from ..harness import DRIVE_TIMEOUT, ChaosRun, Scenario


def died_at_commit(run: ChaosRun) -> None:
    """3. The process dies between the commit and the enqueue: orders are paid by processes
    that SIGKILL themselves in an on-commit hook registered before the enqueue hooks
    (``chaos.oncommit``)."""
    from notifications.models import Notification

    sizes = run.sizes
    run.start("web", "payments", "worker", "beat")
    orders = plan_orders(sizes.orders, seed=4)
    unpaid = [replace(order, action=None) for order in orders]
    state = run.drive(unpaid).wait(timeout=DRIVE_TIMEOUT)
    finishing = [
        (state.tx_nos[order.number], order.action)
        for order in orders
        if order.number in state.tx_nos
    ]
    deaths, untouched = [], 0
    for start in range(0, len(finishing), sizes.oncommit_batch):
        batch = finishing[start : start + sizes.oncommit_batch]
        died = subprocess.run(
            [sys.executable, "-m", "chaos.oncommit"],
            input=json.dumps(batch).encode(),
            env=run.stack.env,
            cwd=ROOT,
            capture_output=True,
            timeout=120,
        )
        deaths.append(died.returncode)
        if died.returncode != -9:
            run.say(f"payer exited {died.returncode}: {died.stderr.decode()[-500:]}")
        untouched += Notification.objects.filter(
            subject__in=[tx_no for tx_no, _ in batch], attempt_count=0
        ).count()
    run.say(f"{len(deaths)} payer processes SIGKILLed at commit")
    run.end_fault()
    run.settle()
    run.figures()
    run.check_drive(state)
    run.check(
        "every payer died in the on-commit window",
        deaths and all(code == -9 for code in deaths),
        f"exit statuses {sorted(set(deaths))}",
    )
    run.check(
        "no notification was attempted before the sweeper found it",
        untouched == len(finishing) == run.outcome.notifications,
        f"{untouched} of {len(finishing)} untouched right after their payer died",
    )
    delays = _first_attempt_delays()
    run.note(
        f"{len(deaths)} payer processes SIGKILLed between commit and enqueue, "
        f"{len(finishing)} orders finished with nothing sent to the broker; all delivered once "
        f"the sweeper woke a worker (commit to first attempt: median "
        f"{delays[len(delays) // 2] if delays else 0:.1f}s, max {delays[-1] if delays else 0:.1f}s)"
    )


def _first_attempt_delays() -> list[float]:
    """Seconds from each notification's commit to its first attempt, sorted."""
    from notifications.models import DeliveryAttempt

    return sorted(
        (started - created).total_seconds()
        for started, created in DeliveryAttempt.objects.filter(number=1).values_list(
            "started_at", "notification__created_at"
        )
    )


SCENARIOS = [Scenario("3", "process dies between commit and enqueue", died_at_commit)]
