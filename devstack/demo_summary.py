"""The demo's summary and books tables, read through this process's Django."""


def summary_rows(*, orders: list, errors: list, report, proxy, timings) -> list[tuple]:
    """(label, value) rows: what the pages, payments, the notifier, the fault proxy (its own
    counts of what it injected) and accounts did, and how long each step took."""
    from accounts.models import LedgerEntry, Recharge
    from notifications.models import DeliveryAttempt, Notification
    from payments.models import RechargeOrder

    status = RechargeOrder.Status
    planned_pay = sum(order.action == "pay" for order in orders)
    injected = proxy.injected()
    subjects = subjects_by_webhook_id()
    dropped_tx_nos = {subjects.get(webhook_id) for webhook_id in proxy.injected_ids("dropped")}
    reconciled = Recharge.objects.filter(closed_by=LedgerEntry.Source.RECONCILIATION)
    return [
        ("orders (at payments / planned)", f"{RechargeOrder.objects.count()} / {len(orders)}"),
        ("succeeded (planned pay)", f"{_orders(status.SUCCEEDED)} ({planned_pay})"),
        ("failed (planned decline)", f"{_orders(status.FAILED)} ({len(orders) - planned_pay})"),
        ("still pending at payments", _orders(status.PENDING)),
        ("browser errors", len(errors)),
        (
            "notifications delivered",
            f"{_notifications(Notification.State.DELIVERED)} / {Notification.objects.count()}",
        ),
        ("notifications exhausted", _notifications(Notification.State.EXHAUSTED)),
        ("delivery attempts", DeliveryAttempt.objects.count()),
        (
            "retries (attempts after the first)",
            DeliveryAttempt.objects.filter(number__gt=1).count(),
        ),
        ("first deliveries refused (503, by the proxy)", injected["refused_first"]),
        ("notifications dropped (200, by the proxy)", injected["dropped"]),
        (
            "recharges closed by notification",
            Recharge.objects.filter(closed_by=LedgerEntry.Source.NOTIFICATION).count(),
        ),
        ("recharges closed by reconciliation", reconciled.count()),
        ("  of which notification dropped", reconciled.filter(tx_no__in=dropped_tx_nos).count()),
        ("median first-attempt delay (s)", f"{_median_first_attempt_delay():.2f}"),
        ("ledger credits", LedgerEntry.objects.count()),
        ("stack start (s)", f"{timings.span('begin', 'started'):.1f}"),
        ("drive recharges (s)", f"{timings.span('started', 'driven'):.1f}"),
        ("settle (s)", f"{timings.span('driven', 'settled'):.1f}"),
        ("elapsed (s)", f"{timings.span('begin', 'settled'):.1f}"),
        ("books balance", "yes" if report.books_balance else "NO"),
    ]


def account_rows(report) -> list[tuple]:
    """One row per account: orders, paid, credits, ledger, balance, balanced."""
    from core.money import format_minor

    return [
        (
            totals.account_no,
            totals.orders,
            format_minor(totals.succeeded, totals.currency),
            totals.credits,
            format_minor(totals.credited, totals.currency),
            format_minor(totals.balance, totals.currency),
            "yes" if totals.balanced else "NO",
        )
        for totals in report.accounts
    ]


def subjects_by_webhook_id() -> dict[str, str]:
    """``{webhook-id: subject (tx_no)}`` of every notification."""
    from notifications.models import Notification

    return {n.webhook_id: n.subject for n in Notification.objects.only("id", "subject")}


def _orders(status) -> int:
    from payments.models import RechargeOrder

    return RechargeOrder.objects.filter(status=status).count()


def _notifications(state) -> int:
    from notifications.models import Notification

    return Notification.objects.filter(state=state).count()


def _median_first_attempt_delay() -> float:
    """Seconds from a notification's creation to its first attempt, median (0 if none)."""
    from notifications.models import DeliveryAttempt

    delays = sorted(
        (started - created).total_seconds()
        for started, created in DeliveryAttempt.objects.filter(number=1).values_list(
            "started_at", "notification__created_at"
        )
    )
    return delays[len(delays) // 2] if delays else 0.0
