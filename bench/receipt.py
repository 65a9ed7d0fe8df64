"""Scenario 2, receiver throughput: pre-signed, valid, distinct notifications POSTed
concurrently to ``/api/accounts/notify/``, each matching a pending recharge, then the same set
again (all duplicates); against a bare Django view on the same server (``/bench/bare/``: parse
JSON, answer 200) sent the same bodies and headers at the same concurrency."""

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import requests

from .common import SECRET, notification_body, recharge_data


def prepare(*, n: int, tag: str, accounts: int = 200) -> list[tuple[str, dict]]:
    """N pending recharges spread over ``accounts`` accounts (as many users' recharges are:
    one account would serialize every credit on its balance row) and, for each, a signed
    notification of its success: ``[(body, headers)]``. Signed now; the receiver accepts
    them for 5 minutes."""
    from django.contrib.auth import get_user_model

    from accounts.models import Account, Recharge
    from notifications.signing import signed_headers

    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"bench-{tag}-{i}") for i in range(accounts)]
    )
    owners = Account.objects.bulk_create(
        [
            Account(user=user, currency="CNY", account_no=f"{tag}{i:010d}")
            for i, user in enumerate(users)
        ]
    )
    items, recharges = [], []
    now = datetime.now(UTC)
    for number in range(n):
        account = owners[number % accounts]
        data = recharge_data(tag, number, account_no=account.account_no)
        recharges.append(
            Recharge(
                account=account,
                out_trade_no=data["out_trade_no"],
                tx_no=data["tx_no"],
                amount=data["amount"],
                currency=data["currency"],
            )
        )
        webhook_id = f"msg_{uuid.uuid4().hex}"
        body = notification_body(webhook_id, data)
        headers = signed_headers(webhook_id=webhook_id, body=body, secrets=[SECRET], timestamp=now)
        items.append((body, headers))
    Recharge.objects.bulk_create(recharges, batch_size=500)
    return items


def post_all(url: str, items: list, *, clients: int, timeout: float) -> dict:
    """POST every ``(body, headers)`` to ``url`` from ``clients`` threads (one keep-alive
    session each). Returns seconds, rate and the count of each status / outcome."""
    local = threading.local()

    def post(item) -> str:
        body, headers = item
        if not hasattr(local, "session"):
            local.session = requests.Session()
        try:
            response = local.session.post(url, data=body.encode(), headers=headers, timeout=30)
        except requests.RequestException as exc:
            return type(exc).__name__
        if response.status_code == 200 and response.content.startswith(b"{"):
            return f"200 {response.json().get('outcome', '')}".strip()
        return str(response.status_code)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as executor:
        outcomes = list(executor.map(post, items, timeout=timeout))
    seconds = time.perf_counter() - started
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return {
        "n": len(items),
        "seconds": round(seconds, 3),
        "rate": round(len(items) / seconds, 1),
        "outcomes": counts,
    }


def run(*, web_url: str, n: int, clients: int, timeout: float, progress, meter) -> dict:
    """The passes, each with its CPU split per request (``meter()`` is a fresh
    ``cpu.CpuMeter``): the bare view, applied, duplicates, the bare view again. The bare
    view's rate is the mean of its two passes, which bracket ours: a single pass varied by
    a third between runs on this shared machine."""
    from accounts.models import LedgerEntry

    tag = f"RC{uuid.uuid4().hex[:6]}"
    progress.set_postfix_str("receiver: signing")
    items = prepare(n=n, tag=tag)
    results = {"n": n, "clients": clients}
    for name, path in (
        ("bare", "/bench/bare/"),
        ("applied", "/api/accounts/notify/"),
        ("duplicates", "/api/accounts/notify/"),
        ("bare_after", "/bench/bare/"),
    ):
        progress.set_postfix_str(f"receiver: {name}")
        with meter() as cpu:
            results[name] = post_all(web_url + path, items, clients=clients, timeout=timeout)
        results[name]["cpu_ms"] = cpu.per_item(n)
    credited = LedgerEntry.objects.filter(tx_no__startswith=tag).count()
    results["ledger_credits"] = credited
    results["correct"] = (
        credited == n
        and results["applied"]["outcomes"] == {"200 applied": n}
        and results["duplicates"]["outcomes"] == {"200 duplicate": n}
    )
    bare = (results["bare"]["rate"] + results["bare_after"]["rate"]) / 2
    results["bare"]["passes"] = [results["bare"]["rate"], results["bare_after"]["rate"]]
    results["bare"]["rate"] = round(bare, 1)
    results["ratios"] = {
        "applied": round(results["applied"]["rate"] / bare, 3),
        "duplicates": round(results["duplicates"]["rate"] / bare, 3),
    }
    return results
