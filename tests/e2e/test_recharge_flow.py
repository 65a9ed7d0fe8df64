"""The recharge pipeline end to end, through the real stack and real HTTP on loopback.

A person logs in to the web app, submits the top-up form and pays at the sandbox cashier,
exactly as in a browser (``requests`` with a cookie jar and CSRF tokens). The payment commits
the order and its notification; the real Celery worker, fed through Redis, POSTs the signed
notification to accounts' notify endpoint; the test polls the database, with a deadline, for
the outcome. Retry schedules are compressed to seconds through the stack's environment.
"""

import hashlib
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
import requests
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from accounts.models import Account, InboundNotification, LedgerEntry, Recharge
from accounts.tasks import reconcile_pending
from devstack import settle
from devstack.browser import Browser
from devstack.proxy import FaultProxy
from devstack.redis import free_port
from notifications.models import Notification
from notifications.services import notification_resend
from notifications.signing import signed_headers
from payments.models import RechargeOrder

AMOUNT_TEXT, AMOUNT = "12.34", 1234  # CNY: what the person types, and minor units
DEADLINE = 30.0  # seconds to wait for an outcome that normally takes one or two
HTTP_TIMEOUT = 15.0

Delivered = Notification.State.DELIVERED
Source = LedgerEntry.Source


# --- Helpers --------------------------------------------------------------------------------


def browser_at_cashier(stack, customer, amount: str = AMOUNT_TEXT) -> tuple[Browser, str]:
    """Log in as ``customer`` and submit the top-up form: the browser, and the cashier URL it
    was sent to, whose page offers Pay."""
    browser = Browser(
        base_url=stack.web_url,
        username=customer.username,
        password=customer.password,
        timeout=HTTP_TIMEOUT,
    )
    browser.login()
    cashier_url = browser.top_up(amount)
    assert cashier_url.startswith(f"{stack.web_url}/pay/"), cashier_url
    page = browser.request("GET", cashier_url, expect=200)
    assert "Pay" in page.text, page.text[:1000]
    return browser, cashier_url


def top_up_and_pay(stack, customer, amount: str = AMOUNT_TEXT) -> Recharge:
    """Log in, top up ``amount`` and pay: the recharge accounts started, now paid."""
    browser, cashier_url = browser_at_cashier(stack, customer, amount)
    browser.finish(cashier_url, "pay")
    recharge = Recharge.objects.get(account=customer.account)
    assert cashier_url == recharge.cashier_url
    assert RechargeOrder.objects.get(tx_no=recharge.tx_no).status == RechargeOrder.Status.SUCCEEDED
    return recharge


def wait_until(predicate, *, what: str, stack=None, timeout: float = DEADLINE):
    """Poll ``predicate`` every 0.2 s until it returns something truthy (returned); raise at
    the deadline or as soon as a process of the stack has exited (``devstack.settle``)."""
    return settle.wait_until(predicate, timeout=timeout, interval=0.2, what=what, stack=stack)


def wait_for_credit(recharge: Recharge, stack) -> None:
    wait_until(
        lambda: LedgerEntry.objects.filter(tx_no=recharge.tx_no).exists(),
        what=f"a ledger entry for {recharge.tx_no}",
        stack=stack,
    )


def wait_for_state(notification: Notification, state: str, stack, **kwargs) -> Notification:
    """The notification once it is in ``state`` (and matches ``kwargs``, e.g. attempt_count)."""
    return wait_until(
        lambda: Notification.objects.filter(pk=notification.pk, state=state, **kwargs).first(),
        what=f"notification {notification.pk} {state} {kwargs or ''}",
        stack=stack,
    )


def assert_credited_once(recharge: Recharge, *, source: str) -> None:
    """The recharge succeeded, closed by ``source``, with exactly one ledger entry for it and
    the balance raised by its amount only."""
    recharge.refresh_from_db()
    assert recharge.status == Recharge.Status.SUCCEEDED
    assert recharge.closed_by == source
    entries = LedgerEntry.objects.filter(account=recharge.account)
    assert [(e.tx_no, e.amount, e.currency, e.source) for e in entries] == [
        (recharge.tx_no, AMOUNT, "CNY", source)
    ]
    assert Account.objects.get(pk=recharge.account_id).balance == AMOUNT


def post_concurrently(url: str, *, body: bytes, headers: dict, times: int) -> list:
    """POST the same bytes ``times`` times at once, each on its own connection."""
    barrier = threading.Barrier(times)

    def post(_):
        with requests.Session() as http:
            barrier.wait(timeout=HTTP_TIMEOUT)
            return http.post(url, data=body, headers=headers, timeout=HTTP_TIMEOUT)

    with ThreadPoolExecutor(max_workers=times) as pool:
        return list(pool.map(post, range(times)))


def signed_notification(notification: Notification, secret: str) -> tuple[bytes, dict]:
    """The notification's frozen bytes and fresh Standard Webhooks headers, as payments sends."""
    headers = signed_headers(
        webhook_id=notification.webhook_id,
        body=notification.body,
        secrets=[secret],
        timestamp=datetime.now(UTC),
    )
    return notification.body.encode(), headers


# --- Tests ----------------------------------------------------------------------------------


@pytest.mark.e2e
def test_happy_path_credits_the_account_once(start_stack, customer):
    """Log in, top up 12.34 CNY, pay at the cashier: the worker delivers the notification on
    its first attempt (one attempt row, 200), accounts applies it (receipt "applied", one
    delivery) and credits 1234 minor units exactly once; the return page shows success."""
    stack = start_stack()
    browser, cashier_url = browser_at_cashier(stack, customer)
    return_url = browser.finish(cashier_url, "pay")

    recharge = Recharge.objects.get(account=customer.account)
    assert (recharge.amount, recharge.currency) == (AMOUNT, "CNY")
    assert return_url == f"{stack.web_url}/recharges/{recharge.out_trade_no}/"
    wait_for_credit(recharge, stack)
    notification = wait_for_state(
        Notification.objects.get(subject=recharge.tx_no), Delivered, stack
    )

    assert_credited_once(recharge, source=Source.NOTIFICATION)
    assert notification.event_type == "recharge.succeeded"
    assert notification.target_url == f"{stack.web_url}/api/accounts/notify/"
    assert notification.attempt_count == 1
    assert [(a.number, a.status_code, a.succeeded) for a in notification.attempts.all()] == [
        (1, 200, True)
    ]
    receipt = InboundNotification.objects.get(webhook_id=notification.webhook_id)
    assert (receipt.tx_no, receipt.deliveries, receipt.outcome) == (recharge.tx_no, 1, "applied")
    page = browser.request("GET", return_url, expect=200)
    assert "Succeeded" in page.text
    home = browser.request("GET", "/", expect=200)
    assert "12.34 CNY" in home.text


@pytest.mark.e2e
def test_flaky_receiver_is_retried_on_the_schedule_until_it_acknowledges(start_stack, customer):
    """A receiver that answers 503 to its first k=2 deliveries is retried on the configured
    ladder (1 s, then 2 s; no jitter) until it acknowledges: attempt rows 1..3 with 503, 503,
    200; every request carries the same webhook-id and the same body bytes; the gaps between
    attempts are at least the ladder's steps (a lower bound only); the account is credited once.

    How the receiver is made flaky: accounts is published behind the harness's fault proxy
    (``devstack.proxy.FaultProxy``, refusing the first two requests of every webhook-id) by
    pointing ACCOUNTS_PUBLIC_URL at it, so the recharge is still started the real way (login +
    form, accounts creates the order over the merchant API) and its notify_url is the
    proxy's, which forwards unchanged to the real endpoint.
    """
    ladder, k = (1.0, 2.0, 2.0, 2.0), 2
    with FaultProxy(refuse_first=1.0, refusals=k) as receiver:
        stack = start_stack(
            NOTIFY_RETRY_SCHEDULE=",".join(f"{step:g}s" for step in ladder),
            ACCOUNTS_PUBLIC_URL=receiver.url,
        )
        receiver.upstream = stack.web_url
        recharge = top_up_and_pay(stack, customer)
        notification = Notification.objects.get(subject=recharge.tx_no)
        assert notification.target_url == f"{receiver.url}/api/accounts/notify/"
        notification = wait_for_state(notification, Delivered, stack)
        received = sorted(receiver.seen, key=lambda seen: seen.arrived)

    assert_credited_once(recharge, source=Source.NOTIFICATION)
    attempts = list(notification.attempts.all())
    assert [a.number for a in attempts] == [1, 2, 3]
    assert [a.status_code for a in attempts] == [503, 503, 200]
    assert [a.succeeded for a in attempts] == [False, False, True]
    assert [a.error for a in attempts] == ["HTTP 503", "HTTP 503", ""]
    assert notification.attempt_count == 3

    assert [(r.status, r.fault) for r in received] == [
        (503, "refused_first"),
        (503, "refused_first"),
        (200, ""),
    ]
    assert receiver.injected() == {"refused_first": k}
    assert {r.webhook_id for r in received} == {notification.webhook_id}
    body_sha256 = hashlib.sha256(notification.body.encode()).hexdigest()
    assert {r.body_sha256 for r in received} == {body_sha256}
    # Signed afresh per attempt: the timestamps never go backwards.
    stamps = [int(r.webhook_timestamp) for r in received]
    assert stamps == sorted(stamps)
    for n, step in enumerate(ladder[:k]):
        arrival_gap = received[n + 1].arrived - received[n].arrived
        row_gap = (attempts[n + 1].started_at - attempts[n].started_at).total_seconds()
        assert arrival_gap >= step - 0.01, (n + 1, arrival_gap, step)
        assert row_gap >= step - 0.01, (n + 1, row_gap, step)
    receipt = InboundNotification.objects.get(webhook_id=notification.webhook_id)
    assert (receipt.deliveries, receipt.outcome) == (1, "applied")  # 503s never reached it


@pytest.mark.e2e
def test_receiver_down_exhausts_the_ladder_and_reconciliation_closes_it(start_stack, customer):
    """A notify_url with nothing listening: every attempt fails with a connection error and
    the notification is exhausted after exactly len(ladder) + 1 = 4 attempts (ladder 1s,1s,1s);
    meanwhile nothing is credited and the recharge stays pending. Reconciliation (sent through
    Redis to the real worker) then asks payments' query API and credits it once."""
    ladder = (1.0, 1.0, 1.0)
    nowhere = f"http://127.0.0.1:{free_port()}"
    stack = start_stack(
        NOTIFY_RETRY_SCHEDULE=",".join(f"{step:g}s" for step in ladder),
        ACCOUNTS_PUBLIC_URL=nowhere,
        ACCOUNTS_RECONCILE_AFTER=0,
    )
    recharge = top_up_and_pay(stack, customer)
    notification = Notification.objects.get(subject=recharge.tx_no)
    assert notification.target_url == f"{nowhere}/api/accounts/notify/"
    notification = wait_for_state(notification, Notification.State.EXHAUSTED, stack)

    attempts = list(notification.attempts.all())
    assert [a.number for a in attempts] == list(range(1, len(ladder) + 2))
    assert notification.attempt_count == len(ladder) + 1
    for attempt in attempts:
        assert (attempt.status_code, attempt.succeeded) == (None, False)
        assert attempt.error.startswith("connection error"), attempt.error
    assert notification.last_error.startswith("connection error")
    recharge.refresh_from_db()
    assert recharge.status == Recharge.Status.PENDING
    assert not LedgerEntry.objects.exists()
    assert not InboundNotification.objects.exists()

    reconcile_pending.delay()
    wait_for_credit(recharge, stack)
    assert_credited_once(recharge, source=Source.RECONCILIATION)
    notification.refresh_from_db()
    assert notification.state == Notification.State.EXHAUSTED  # staff's to resend, if they like


@pytest.mark.e2e
def test_dropped_notification_is_closed_by_reconciliation(start_stack, customer):
    """The receiver acknowledges the notification but loses it (the fault proxy in front of
    accounts' notify endpoint drops every webhook-id: 200, never forwarded): payments counts
    it delivered after one attempt and accounts never hears of it. The real beat (its
    reconciliation entry set to every second in the database) runs accounts'
    reconciliation, which asks payments' query API and credits the recharge once, with
    ledger source "reconciliation"; later ticks credit nothing more."""
    entry = PeriodicTask.objects.get(task="accounts.reconcile_pending")
    entry.interval, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.SECONDS
    )
    entry.save()
    with FaultProxy(drop=1.0) as receiver:
        stack = start_stack(
            processes=("web", "payments", "worker", "beat"),
            ACCOUNTS_PUBLIC_URL=receiver.url,
            ACCOUNTS_RECONCILE_AFTER=2,
        )
        receiver.upstream = stack.web_url
        recharge = top_up_and_pay(stack, customer)
        notification = Notification.objects.get(subject=recharge.tx_no)
        notification = wait_for_state(notification, Delivered, stack)
        wait_for_credit(recharge, stack)

    assert [(a.number, a.status_code) for a in notification.attempts.all()] == [(1, 200)]
    assert receiver.injected_ids("dropped") == {notification.webhook_id: 1}
    assert not InboundNotification.objects.filter(webhook_id=notification.webhook_id).exists()
    assert_credited_once(recharge, source=Source.RECONCILIATION)
    time.sleep(2.5)  # more beat ticks: the recharge is final, nothing is applied again
    assert_credited_once(recharge, source=Source.RECONCILIATION)


@pytest.mark.e2e
def test_notification_delivered_twice_credits_once(start_stack, customer, stack_merchant):
    """A delivered notification sent again (staff's "resend now", committed here so its
    on-commit enqueue reaches Redis and the real worker) makes a second attempt, also 200,
    which accounts records as a duplicate (receipt deliveries 2, outcome duplicate) without a
    second credit. Ten concurrent POSTs of the same signed bytes are then all acknowledged as
    duplicates and still credit nothing more."""
    stack = start_stack()
    recharge = top_up_and_pay(stack, customer)
    notification = Notification.objects.get(subject=recharge.tx_no)
    wait_for_state(notification, Delivered, stack)
    wait_for_credit(recharge, stack)

    assert notification_resend(notification_id=notification.pk)
    notification = wait_for_state(notification, Delivered, stack, attempt_count=2)
    assert [(a.number, a.status_code) for a in notification.attempts.all()] == [
        (1, 200),
        (2, 200),
    ]
    receipt = InboundNotification.objects.get(webhook_id=notification.webhook_id)
    assert (receipt.deliveries, receipt.outcome) == (2, "duplicate")
    assert_credited_once(recharge, source=Source.NOTIFICATION)

    body, headers = signed_notification(notification, stack_merchant.webhook_secret)
    responses = post_concurrently(
        f"{stack.web_url}/api/accounts/notify/", body=body, headers=headers, times=10
    )
    assert [r.status_code for r in responses] == [200] * 10, [r.text for r in responses]
    assert Counter(r.json()["outcome"] for r in responses) == {"duplicate": 10}
    receipt.refresh_from_db()
    assert (receipt.deliveries, receipt.outcome) == (12, "duplicate")
    assert_credited_once(recharge, source=Source.NOTIFICATION)


@pytest.mark.e2e
def test_concurrent_first_deliveries_credit_once(start_stack, customer, stack_merchant):
    """With no worker running, the paid order's notification waits in the outbox; ten
    concurrent first deliveries of its signed bytes (two gunicorn workers, eight threads each,
    over one database) are all acknowledged: exactly one applies, nine are duplicates, the
    receipt counts ten deliveries and the account is credited once."""
    stack = start_stack(processes=("web", "payments"))
    recharge = top_up_and_pay(stack, customer)
    notification = Notification.objects.get(subject=recharge.tx_no)
    assert (notification.state, notification.attempt_count) == (Notification.State.PENDING, 0)

    body, headers = signed_notification(notification, stack_merchant.webhook_secret)
    responses = post_concurrently(
        f"{stack.web_url}/api/accounts/notify/", body=body, headers=headers, times=10
    )
    assert [r.status_code for r in responses] == [200] * 10, [r.text for r in responses]
    assert Counter(r.json()["outcome"] for r in responses) == {"applied": 1, "duplicate": 9}
    receipt = InboundNotification.objects.get(webhook_id=notification.webhook_id)
    assert receipt.deliveries == 10
    assert_credited_once(recharge, source=Source.NOTIFICATION)
