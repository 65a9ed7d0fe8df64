"""Scenarios 6 and 7: everything twice — two beats, and 50 concurrent copies of each
notification while two reconciliations apply the same result."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests

from devstack.shoppers import plan_orders

from ..figures import received_task_ids
from ..harness import DRIVE_TIMEOUT, ChaosRun, Scenario

BARRIER_TIMEOUT = 60  # seconds for a burst's threads to line up
HTTP_TIMEOUT = 60  # seconds per concurrent POST


def two_beats(run: ChaosRun) -> None:
    """6. Two beat processes for the whole scenario: every sweep, expiry and reconciliation
    tick is sent twice (twice the sweeps' wake-ups). A share of first deliveries is refused,
    a share of notifications dropped (reconciliation closes those) and a share of orders
    left unpaid (expiry fails them)."""
    from accounts.models import LedgerEntry, Recharge
    from payments.models import RechargeOrder

    sizes = run.sizes
    run.receiver.refuse_first, run.receiver.drop = 0.3, 0.1
    run.start("web", "payments", "worker", "beat")
    run.stack.launch("beat", key="beat2")
    state = run.drive(plan_orders(sizes.orders, seed=7, unpaid=0.1)).wait(timeout=DRIVE_TIMEOUT)
    run.end_fault()
    run.settle()
    run.figures()
    run.check_drive(state)
    ticks = {
        key: (run.log_dir / f"{key}.log").read_text(errors="replace").count("Sending due task")
        for key in ("beat", "beat2")
    }
    run.check("both beats sent every tick", all(ticks.values()), f"{ticks}")
    sweeps = len(received_task_ids(run.log_dir / "worker.log", "notifications.sweep"))
    reconciled = Recharge.objects.filter(closed_by=LedgerEntry.Source.RECONCILIATION).count()
    expired = RechargeOrder.objects.filter(failure_reason="expired").count()
    run.note(
        f"beats sent {ticks['beat']} + {ticks['beat2']} ticks; {sweeps} sweeps ran; "
        f"{reconciled} recharges closed by reconciliation ({run.outcome.injected}), "
        f"{expired} orders expired"
    )


def concurrent_duplicates(run: ChaosRun) -> None:
    """7. The same signed notification POSTed ``burst`` times at once, with two
    reconciliations applying the same result at the same moment, before any worker runs."""
    from accounts.models import InboundNotification, LedgerEntry
    from notifications.models import Notification
    from notifications.signing import signed_headers
    from payments.models import Merchant

    sizes = run.sizes
    run.start("web", "payments")  # no worker, no beat: the notifications wait in the outbox
    state = run.drive(plan_orders(sizes.burst_orders, seed=8)).wait(timeout=DRIVE_TIMEOUT)
    statuses: Counter = Counter()
    applied_per_tx: Counter = Counter()
    reconcile_errors = []
    secrets = [Merchant.objects.get().webhook_secret]
    notify_url = f"{run.stack.web_url}/api/accounts/notify/"
    notifications = list(Notification.objects.all())
    with (
        ThreadPoolExecutor(max_workers=sizes.burst) as posters,
        ThreadPoolExecutor(max_workers=2) as reconcilers,
    ):
        for notification in notifications:
            body = notification.body.encode()
            headers = signed_headers(
                webhook_id=notification.webhook_id,
                body=notification.body,
                secrets=secrets,
                timestamp=datetime.now(UTC),
            )
            barrier = threading.Barrier(sizes.burst + 2)
            posted = [
                posters.submit(_post, notify_url, body, headers, barrier)
                for _ in range(sizes.burst)
            ]
            reconciled = [
                reconcilers.submit(_reconcile, run, notification.subject, barrier) for _ in range(2)
            ]
            for future in posted:
                status, outcome = future.result()
                statuses[status] += 1
                applied_per_tx[notification.subject] += outcome == "applied"
            for future in reconciled:
                result = future.result()
                if result.startswith("error"):
                    reconcile_errors.append(result)
                applied_per_tx[notification.subject] += result == "applied"
    run.end_fault()
    run.say(f"{len(notifications)} bursts of {sizes.burst} POSTs + 2 reconciliations done")
    run.start("worker", "beat")  # the outbox is delivered too: duplicates, acknowledged
    run.settle()
    run.figures()
    run.check_drive(state)
    non_2xx = {s: n for s, n in statuses.items() if s is None or not 200 <= s < 300}
    run.check(
        "every response to the concurrent POSTs was 2xx",
        not non_2xx,
        f"{sum(statuses.values())} responses; non-2xx: {non_2xx}",
    )
    server_errors = sum(n for s, n in statuses.items() if s is None or s >= 500)
    run.check("no 5xx and no dropped connection", server_errors == 0, f"{server_errors}")
    run.check("no reconciliation failed", not reconcile_errors, f"{reconcile_errors[:3]}")
    wrong = {tx: n for tx, n in applied_per_tx.items() if n != 1}
    run.check(
        "each result applied exactly once (POSTs and reconciliations together)",
        not wrong and len(applied_per_tx) == len(notifications),
        f"{dict(list(wrong.items())[:5])}",
    )
    entries = Counter(LedgerEntry.objects.values_list("tx_no", flat=True))
    run.check(
        "one ledger entry per succeeded order",
        all(n == 1 for n in entries.values()),
        f"{len(entries)} entries",
    )
    deliveries = sum(InboundNotification.objects.values_list("deliveries", flat=True))
    run.note(
        f"{len(notifications)} notifications x {sizes.burst} concurrent POSTs + 2 concurrent "
        f"reconciliations ({run.database.vendor}): {sum(statuses.values())} responses, "
        f"statuses {dict(statuses)}; {deliveries} deliveries logged; each applied once"
    )


def _post(url: str, body: bytes, headers: dict, barrier: threading.Barrier):
    """POST signed bytes straight to the notify endpoint once the whole burst is lined up:
    (status or None, the receipt's outcome)."""
    with requests.Session() as http:
        http.trust_env = False
        barrier.wait(timeout=BARRIER_TIMEOUT)
        try:
            response = http.post(url, data=body, headers=headers, timeout=HTTP_TIMEOUT)
        except requests.RequestException as exc:
            return None, type(exc).__name__
    try:
        return response.status_code, response.json().get("outcome", "")
    except ValueError:
        return response.status_code, ""


def _reconcile(run: ChaosRun, tx_no: str, barrier: threading.Barrier) -> str:
    """Reconcile the recharge ``tx_no`` in this process once the burst is lined up: the
    service's answer ("applied", ...) or ``"error: ..."``."""
    from django.conf import settings
    from django.db import connection

    from accounts.models import Recharge
    from accounts.payments_client import PaymentsClient
    from accounts.services import recharge_reconcile

    client = PaymentsClient(
        base_url=run.stack.payments_url,
        api_key=settings.ACCOUNTS_PAYMENTS_API_KEY,
        timeout=HTTP_TIMEOUT,
    )
    try:
        recharge = Recharge.objects.select_related("account").get(tx_no=tx_no)
        barrier.wait(timeout=BARRIER_TIMEOUT)
        return recharge_reconcile(recharge=recharge, client=client)
    except Exception as exc:  # noqa: BLE001 - recorded, and checked by the scenario
        return f"error: {type(exc).__name__}: {exc}"
    finally:
        connection.close()


SCENARIOS = [
    Scenario(
        "6",
        "two beats for the whole run",
        two_beats,
        {
            "ACCOUNTS_RECONCILE_AFTER": "6",
            "PAYMENTS_ORDER_TTL": "5",
        },
    ),
    Scenario("7", "50 concurrent duplicates + reconciliation at once", concurrent_duplicates),
]
