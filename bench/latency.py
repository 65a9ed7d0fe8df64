"""Scenario 3, latency: one order at a time, the time from the payment's commit at payments
to the ledger credit at accounts, through the real path (``recharge_order_pay`` →
outbox row → ``notifications.deliver`` on the worker → POST to the web server's
``/api/accounts/notify/`` → ``LedgerEntry``). The floor, in the same run on the same worker:
an empty Celery task's send → start.

The credit's time is ``LedgerEntry.created_at`` as the web process wrote it (the same clock),
so the driver's polling for it does not add to the figure.
"""

import time
import uuid

import redis
from django.db import transaction

from devstack.settle import wait_until

from .probe import percentile


def prepare(*, n: int, tag: str, web_url: str, app_id: str) -> list[str]:
    """N pending orders at payments, notifying accounts, and their recharges at accounts;
    their tx_nos."""
    from django.contrib.auth import get_user_model

    from accounts.models import Recharge
    from accounts.services import account_create

    user = get_user_model().objects.create_user(f"bench-{tag}")
    account = account_create(user=user, currency="CNY")
    orders = pending_orders(
        n=n,
        tag=tag,
        app_id=app_id,
        account_no=account.account_no,
        notify_url=f"{web_url}/api/accounts/notify/",
    )
    Recharge.objects.bulk_create(
        [
            Recharge(
                account=account,
                currency="CNY",
                out_trade_no=order.out_trade_no,
                tx_no=order.tx_no,
                amount=order.amount,
            )
            for order in orders
        ],
        batch_size=500,
    )
    return [order.tx_no for order in orders]


def pending_orders(*, n: int, tag: str, app_id: str, account_no: str, notify_url: str) -> list:
    """N pending ``RechargeOrder``s of merchant ``app_id`` notifying ``notify_url``."""
    from payments.models import Merchant, RechargeOrder

    merchant = Merchant.objects.get(app_id=app_id)
    orders = [
        RechargeOrder(
            merchant=merchant,
            account_no=account_no,
            currency="CNY",
            notify_url=notify_url,
            return_url=f"{notify_url}done/",
            out_trade_no=f"{tag}R{number:09d}",
            tx_no=f"{tag}TX{number:09d}",
            amount=1000 + number,
        )
        for number in range(n)
    ]
    return RechargeOrder.objects.bulk_create(orders, batch_size=500)


def pay(tx_no: str) -> float:
    """Pay one order; the ``time.time()`` of its commit (before its notification's
    wake-up is sent)."""
    from payments.services import recharge_order_pay

    committed = []
    with transaction.atomic():
        # Registered before the service's own on-commit enqueue, so it runs first.
        transaction.on_commit(lambda: committed.append(time.time()))
        recharge_order_pay(tx_no=tx_no)
    return committed[0]


def pay_and_wait(tx_no: str, *, timeout: float) -> float:
    """Pay one order; seconds from its commit to its ledger credit. Raises WaitTimeout when
    it is not credited within ``timeout`` seconds."""
    from accounts.models import LedgerEntry

    committed = pay(tx_no)
    credit = LedgerEntry.objects.filter(tx_no=tx_no).values_list("created_at", flat=True)
    created_at = wait_until(credit.first, timeout=timeout, interval=0.001, what=f"{tx_no} credited")
    return created_at.timestamp() - committed


def floor(*, n: int, redis_url: str) -> list[float]:
    """Send → start of an empty task, one at a time, ``n`` times (seconds)."""
    from .tasks import noop

    client = redis.Redis.from_url(redis_url)
    key = f"bench:noop:{uuid.uuid4().hex}"
    delays = []
    for _ in range(n):
        noop.apply_async(args=(time.time(), key))
        _, value = client.blpop([key], timeout=30)
        delays.append(float(value))
    client.delete(key)
    return delays


def summary(values: list[float]) -> dict:
    ms = [value * 1000 for value in values]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else None,
        "samples_ms": [round(value, 3) for value in ms],
    }


def run(*, web_url: str, redis_url: str, app_id: str, n: int, timeout: float, progress) -> dict:
    tag = f"LT{uuid.uuid4().hex[:6]}"
    tx_nos = prepare(n=n, tag=tag, web_url=web_url, app_id=app_id)
    latencies = []
    for number, tx_no in enumerate(tx_nos):
        if number % 20 == 0:
            progress.set_postfix_str(f"latency: order {number}/{n}")
        latencies.append(pay_and_wait(tx_no, timeout=timeout))
    progress.set_postfix_str("latency: empty task floor")
    floor_delays = floor(n=n, redis_url=redis_url)
    ours, base = summary(latencies), summary(floor_delays)
    return {
        "ours": ours,
        "floor": base,
        "p50_over_floor_ms": round(ours["p50_ms"] - base["p50_ms"], 2),
    }
