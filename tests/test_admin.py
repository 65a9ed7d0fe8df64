"""The staff admin: stuck-order filters, attempt history, actions, and read-only money."""

import itertools
from datetime import timedelta

import pytest
import responses
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from accounts.models import Account, InboundNotification, LedgerEntry, Recharge
from core.beat import periodic_task_ensure
from notifications.models import DeliveryAttempt, Notification
from payments.models import Merchant, MerchantMember, RechargeOrder
from payments.services import recharge_order_create, recharge_order_decline, recharge_order_pay
from tests.helpers import recharge_fields

PAYMENTS_API = "http://payments.test"
Status = RechargeOrder.Status
State = Notification.State


@pytest.fixture(autouse=True)
def _admin_settings(settings):
    settings.STUCK_AFTER = 600
    settings.ACCOUNTS_PAYMENTS_API_URL = PAYMENTS_API


@pytest.fixture
def make_order(merchant):
    """``make_order(paid=..., declined=...)``: a fresh order, finished as asked."""
    numbers = itertools.count(1)

    def make(*, paid=False, declined=False) -> RechargeOrder:
        order, _ = recharge_order_create(
            merchant=merchant,
            out_trade_no=f"OUT-{next(numbers)}",
            account_no="AC000000000001",
            amount=1234,
            currency="CNY",
            notify_url="http://wallet.test/notify/",
            return_url="http://wallet.test/done/",
        )
        if paid:
            recharge_order_pay(tx_no=order.tx_no)
        if declined:
            recharge_order_decline(tx_no=order.tx_no)
        order.refresh_from_db()
        return order

    return make


@pytest.fixture
def recharge(account):
    """A pending recharge of ours that payments already knows as ``TX-1``."""
    return Recharge.objects.create(
        account=account, out_trade_no="R-1", tx_no="TX-1", amount=1234, currency="CNY"
    )


def notification_of(order: RechargeOrder) -> Notification:
    return Notification.objects.get(subject=order.tx_no)


def set_state(order: RechargeOrder, state: str) -> None:
    Notification.objects.filter(subject=order.tx_no).update(state=state)


def age(model, pk, seconds: float) -> None:
    """Move a row's ``created_at`` ``seconds`` into the past."""
    model.objects.filter(pk=pk).update(created_at=timezone.now() - timedelta(seconds=seconds))


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def change_url(obj) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def listed(admin_client, model, **params) -> set:
    """The primary keys the changelist shows for ``params``."""
    response = admin_client.get(changelist(model), params)
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


def run_action(admin_client, model, action: str, objects) -> list[str]:
    """POST an admin action on ``objects``; the messages it left for staff."""
    response = admin_client.post(
        changelist(model),
        {"action": action, "_selected_action": [obj.pk for obj in objects]},
        follow=True,
    )
    assert response.redirect_chain[0][1] == 302
    # Rendering the page after the redirect consumes them, so the next call starts afresh.
    return [str(message) for message in response.context["messages"]]


def order_json(recharge: Recharge, status: int) -> dict:
    """The payments API's answer for ``recharge``, as ``GET /api/payments/recharges/{tx}/``."""
    return {
        **recharge_fields(recharge),
        "status": status,
        "paid_at": None,
        "cashier_url": f"{PAYMENTS_API}/pay/{recharge.tx_no}/",
    }


# --- Every page renders --------------------------------------------------------------------


@pytest.fixture
def one_of_each(make_order, recharge, account):
    """At least one row of every model registered in the admin."""
    order = make_order(paid=True)
    DeliveryAttempt.objects.create(
        notification=notification_of(order),
        number=1,
        started_at=timezone.now(),
        duration_ms=12,
        status_code=503,
        succeeded=False,
    )
    LedgerEntry.objects.create(
        account=account, tx_no="TX-0", amount=100, currency="CNY", source="notification"
    )
    InboundNotification.objects.create(webhook_id="msg_1", tx_no="TX-1", outcome="rejected")
    Group.objects.create(name="support")
    MerchantMember.objects.create(user=account.user, merchant=order.merchant)
    periodic_task_ensure(name="test: sweep", task="notifications.sweep", every=15, queue="q")
    CrontabSchedule.objects.create(minute="0", hour="3")
    SolarSchedule.objects.create(event="sunrise", latitude=31.23, longitude=121.47)
    ClockedSchedule.objects.create(clocked_time=timezone.now())
    browser = Client()  # django-axes's rows: a log-in (access log), then a failure
    browser.post(reverse("login"), {"username": "alice", "password": "alice-password"})
    Client().post(reverse("login"), {"username": "alice", "password": "wrong"})


def registered_models() -> list:
    return [model for model in apps.get_models() if admin.site.is_registered(model)]


def test_admin_registers_the_pipeline_models_and_beat_schedules():
    """Orders, merchants, the outbox, accounts' models and beat's schedules are in the admin."""
    expected = {
        Merchant,
        RechargeOrder,
        Notification,
        Account,
        LedgerEntry,
        Recharge,
        InboundNotification,
        PeriodicTask,
        IntervalSchedule,
    }
    assert expected <= set(registered_models())


def test_every_changelist_and_change_page_renders(admin_client, one_of_each):
    """Each registered model's list and the change page of one of its rows answer 200."""
    for model in registered_models():
        assert admin_client.get(changelist(model)).status_code == 200, model
        obj = model.objects.first()
        assert obj is not None, f"no {model.__name__} row to open"
        assert admin_client.get(change_url(obj)).status_code == 200, model


def test_non_staff_users_are_sent_to_the_admin_login(client, user):
    """A logged-in user without is_staff gets the admin login page, not the admin."""
    client.force_login(user)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    response = client.get(changelist(RechargeOrder))
    assert response.status_code == 302


def test_view_only_staff_cannot_run_actions(client, user, make_order):
    """Staff with only the view permission see orders but cannot expire them: the actions
    need the change permission."""
    user.is_staff = True
    user.save()
    user.user_permissions.add(Permission.objects.get(codename="view_rechargeorder"))
    client.force_login(user)
    order = make_order()

    response = client.post(
        changelist(RechargeOrder), {"action": "expire_pending", "_selected_action": [order.pk]}
    )

    assert response.status_code == 200  # the list again, offering no action at all
    assert response.context["action_form"] is None
    order.refresh_from_db()
    assert order.status == Status.PENDING


def test_periodic_tasks_are_editable(admin_client):
    """Staff can change a beat schedule in the admin (here: disable it)."""
    task = periodic_task_ensure(name="test: sweep", task="notifications.sweep", every=15, queue="q")
    response = admin_client.post(
        change_url(task),
        {
            "name": task.name,
            "regtask": "notifications.sweep",
            "task": "",
            "description": "",
            "interval": task.interval_id,
            "args": "[]",
            "kwargs": "{}",
            "queue": "q",
            "exchange": "",
            "routing_key": "",
            "headers": "{}",
            "priority": "",
            "expire_seconds": "",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    task.refresh_from_db()
    assert task.enabled is False


# --- Stuck orders --------------------------------------------------------------------------


@pytest.fixture
def orders(make_order):
    """One order of every kind the "stuck" filter tells apart."""
    orders = {
        "fresh": make_order(),
        "old_pending": make_order(),
        "old_paid_delivered": make_order(paid=True),
        "paid_pending": make_order(paid=True),
        "paid_sending": make_order(paid=True),
        "paid_delivered": make_order(paid=True),
        "declined_exhausted": make_order(declined=True),
        "paid_exhausted": make_order(paid=True),
    }
    age(RechargeOrder, orders["old_pending"].pk, 601)
    age(RechargeOrder, orders["old_paid_delivered"].pk, 3600)
    set_state(orders["old_paid_delivered"], State.DELIVERED)
    set_state(orders["paid_sending"], State.SENDING)
    set_state(orders["paid_delivered"], State.DELIVERED)
    set_state(orders["declined_exhausted"], State.EXHAUSTED)
    set_state(orders["paid_exhausted"], State.EXHAUSTED)
    return orders


def pks(orders: dict, *names: str) -> set:
    return {orders[name].pk for name in names}


def test_stuck_filter_pending_too_long(admin_client, orders):
    """The "pending too long" filter lists orders pending longer than STUCK_AFTER, and only them."""
    shown = listed(admin_client, RechargeOrder, stuck="pending_too_long")
    assert shown == pks(orders, "old_pending")


def test_stuck_filter_final_but_not_acknowledged(admin_client, orders):
    """The "final, not acknowledged" filter lists final orders whose notification is not
    delivered (pending, sending or exhausted)."""
    shown = listed(admin_client, RechargeOrder, stuck="unacknowledged")
    expected = ("paid_pending", "paid_sending", "declined_exhausted", "paid_exhausted")
    assert shown == pks(orders, *expected)


def test_stuck_filter_exhausted(admin_client, orders):
    """The "notification exhausted" filter lists the orders whose notification ran out of
    retries."""
    shown = listed(admin_client, RechargeOrder, stuck="exhausted")
    assert shown == pks(orders, "declined_exhausted", "paid_exhausted")


def test_order_list_shows_formatted_amount_and_notification_state(admin_client, orders):
    """The order list shows money in major units and each order's notification state."""
    response = admin_client.get(changelist(RechargeOrder))
    assert b"12.34 CNY" in response.content
    assert b"exhausted" in response.content


def test_pending_too_long_filter_on_recharges(admin_client, account):
    """Accounts' "pending too long" lists our pending recharges older than STUCK_AFTER."""
    make = itertools.count(1)

    def recharge(status=Recharge.Status.PENDING, seconds_old=0):
        row = Recharge.objects.create(
            account=account, out_trade_no=f"R-{next(make)}", amount=1, currency="CNY", status=status
        )
        age(Recharge, row.pk, seconds_old)
        return row

    old = recharge(seconds_old=601)
    recharge(seconds_old=10)
    recharge(status=Recharge.Status.SUCCEEDED, seconds_old=3600)
    assert listed(admin_client, Recharge, stuck="pending_too_long") == {old.pk}


def test_rejected_notifications_are_one_filter_away(admin_client):
    """Staff find rejected inbound notifications with the outcome filter."""
    rejected = InboundNotification.objects.create(webhook_id="msg_bad", outcome="rejected")
    InboundNotification.objects.create(webhook_id="msg_ok", outcome="applied")
    assert listed(admin_client, InboundNotification, outcome="rejected") == {rejected.pk}


# --- The order page ------------------------------------------------------------------------


def test_order_page_shows_its_notification_and_every_attempt_escaped(admin_client, make_order):
    """The order page lists each delivery attempt's number, status, duration, error and
    response, with the receiver's response escaped rather than rendered as HTML."""
    order = make_order(paid=True)
    notification = notification_of(order)
    attempt = {"started_at": timezone.now(), "succeeded": False, "notification": notification}
    DeliveryAttempt.objects.create(
        number=1, duration_ms=4321, status_code=503, response_excerpt="<b>busy</b>", **attempt
    )
    DeliveryAttempt.objects.create(number=2, duration_ms=3050, error="ReadTimeout", **attempt)

    response = admin_client.get(change_url(order))

    content = response.content.decode()
    assert response.status_code == 200
    assert notification.webhook_id in content
    assert "<td>1</td>" in content and "<td>4321</td>" in content and "<td>503</td>" in content
    assert "<td>2</td>" in content and "<td>3050</td>" in content and "ReadTimeout" in content
    assert "&lt;b&gt;busy&lt;/b&gt;" in content
    assert "<b>busy</b>" not in content


def test_notification_page_lists_attempts_inline(admin_client, make_order):
    """The notification's own page shows its attempts inline."""
    notification = notification_of(make_order(paid=True))
    DeliveryAttempt.objects.create(
        notification=notification,
        number=1,
        started_at=timezone.now(),
        duration_ms=777,
        error="ConnectionError",
        succeeded=False,
    )
    response = admin_client.get(change_url(notification))
    assert response.status_code == 200
    assert b"ConnectionError" in response.content


# --- Actions -------------------------------------------------------------------------------


def test_resend_action_reschedules_an_exhausted_notification(
    admin_client, make_order, django_capture_on_commit_callbacks
):
    """The "resend notification now" action puts an exhausted notification back to pending, due now,
    and enqueues one delivery after commit; a pending order (nothing to send) is skipped."""
    order = make_order(declined=True)
    set_state(order, State.EXHAUSTED)
    pending = make_order()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notes = run_action(admin_client, RechargeOrder, "resend_notifications", [order, pending])

    notification = notification_of(order)
    assert notification.state == State.PENDING
    assert notification.next_attempt_at <= timezone.now()
    assert len(callbacks) == 1
    assert notes == [
        "Resend queued for the notifications of 1 order(s); skipped 1 (still pending, an "
        "attempt in flight, or its notification deleted after the retention period)."
    ]


def test_notification_resend_action_skips_one_in_flight(
    admin_client, make_order, django_capture_on_commit_callbacks
):
    """The outbox's "Resend now" reschedules an exhausted notification and leaves one whose
    attempt is in flight alone."""
    exhausted, sending = make_order(paid=True), make_order(paid=True)
    set_state(exhausted, State.EXHAUSTED)
    set_state(sending, State.SENDING)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notes = run_action(
            admin_client,
            Notification,
            "resend_now",
            [notification_of(exhausted), notification_of(sending)],
        )

    assert notification_of(exhausted).state == State.PENDING
    assert notification_of(sending).state == State.SENDING
    assert len(callbacks) == 1
    assert "skipped 1" in notes[0]


def test_expire_action_fails_pending_orders_and_leaves_paid_ones(admin_client, make_order):
    """The "expire selected pending orders" action moves a pending order to 200 (with its
    recharge.failed notification) and does not touch a paid one."""
    pending, paid = make_order(), make_order(paid=True)

    notes = run_action(admin_client, RechargeOrder, "expire_pending", [pending, paid])

    pending.refresh_from_db()
    paid.refresh_from_db()
    assert (pending.status, pending.failure_reason) == (Status.FAILED, "expired")
    assert notification_of(pending).event_type == "recharge.failed"
    assert paid.status == Status.SUCCEEDED
    assert Notification.objects.filter(subject=paid.tx_no).count() == 1
    assert notes == ["Expired 1 order(s); skipped 1 (not pending)."]


@responses.activate
def test_reconcile_action_credits_once_then_reports_already_credited(admin_client, recharge):
    """The "reconcile now" action asks payments (GET by tx_no), credits the succeeded recharge
    once and says so; a second run changes nothing and says it was already credited."""
    responses.get(
        f"{PAYMENTS_API}/api/payments/recharges/TX-1/", json=order_json(recharge, Status.SUCCEEDED)
    )

    first = run_action(admin_client, Recharge, "reconcile_now", [recharge])
    second = run_action(admin_client, Recharge, "reconcile_now", [recharge])

    recharge.refresh_from_db()
    recharge.account.refresh_from_db()
    assert recharge.status == Recharge.Status.SUCCEEDED
    assert recharge.closed_by == LedgerEntry.Source.RECONCILIATION
    assert recharge.account.balance == 1234
    assert LedgerEntry.objects.filter(tx_no="TX-1").count() == 1
    assert first == ["Asked payments: 1 credited now."]
    assert second == ["Asked payments: 1 already credited."]
    assert len(responses.calls) == 2


@responses.activate
def test_reconcile_action_reports_api_errors_and_mismatches(admin_client, account, recharge):
    """API errors and results that disagree with our recharge are reported, not applied."""
    other = Recharge.objects.create(
        account=account, out_trade_no="R-2", tx_no="TX-2", amount=500, currency="CNY"
    )
    responses.get(f"{PAYMENTS_API}/api/payments/recharges/TX-1/", status=503, body="down")
    responses.get(
        f"{PAYMENTS_API}/api/payments/recharges/TX-2/",
        json={**order_json(other, Status.SUCCEEDED), "amount": 99999},
    )

    notes = run_action(admin_client, Recharge, "reconcile_now", [recharge, other])

    assert sorted(notes) == [
        "Not reconciled: R-1: payments API answered 503: down",
        "Not reconciled: R-2: amount 99999 does not match ours (500)",
    ]
    assert not LedgerEntry.objects.exists()
    assert set(Recharge.objects.values_list("status", flat=True)) == {Recharge.Status.PENDING}


@responses.activate
def test_reconcile_action_stops_when_payments_is_unreachable(admin_client, account, recharge):
    """An unreachable payments API stops the action at the first recharge instead of
    waiting out one timeout per selected row."""
    Recharge.objects.create(
        account=account, out_trade_no="R-2", tx_no="TX-2", amount=500, currency="CNY"
    )
    # responses refuses any URL it was not given: a ConnectionError, as from a dead host.

    notes = run_action(admin_client, Recharge, "reconcile_now", Recharge.objects.all())

    assert len(responses.calls) == 1
    assert notes[-1] == "Not reconciled: stopped: the payments API is unreachable."


# --- Money is read-only --------------------------------------------------------------------


def test_order_amount_cannot_be_changed_from_the_admin(admin_client, make_order):
    """Posting a new amount or status to an order's page is refused and changes nothing."""
    order = make_order()
    response = admin_client.post(change_url(order), {"amount": 1, "status": Status.SUCCEEDED})
    order.refresh_from_db()
    assert response.status_code == 403
    assert (order.amount, order.status) == (1234, Status.PENDING)
    assert admin_client.get(reverse("admin:payments_rechargeorder_add")).status_code == 403


def test_balance_and_ledger_cannot_be_changed_from_the_admin(admin_client, account):
    """Balances cannot be edited, and the ledger cannot be added to, edited or deleted from."""
    entry = LedgerEntry.objects.create(
        account=account, tx_no="TX-9", amount=100, currency="CNY", source="notification"
    )
    assert admin_client.post(change_url(account), {"balance": 10**9}).status_code == 403
    assert admin_client.get(reverse("admin:accounts_ledgerentry_add")).status_code == 403
    assert admin_client.post(change_url(entry), {"amount": 1}).status_code == 403
    delete = reverse("admin:accounts_ledgerentry_delete", args=[entry.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    account.refresh_from_db()
    entry.refresh_from_db()
    assert (account.balance, entry.amount) == (0, 100)


def test_staff_cannot_make_anyone_a_portal_member_only_remove_one(
    admin_client, admin_user, merchant, user
):
    """A portal admin rolls the merchant's webhook secret and API key, credentials staff
    never get from the admin: staff, even a superuser, cannot add a portal member (say
    themselves) nor change one's user, merchant or role; they can remove one."""
    add = reverse("admin:payments_merchantmember_add")
    fields = {"user": admin_user.pk, "merchant": merchant.pk, "role": "admin"}
    member = MerchantMember.objects.create(user=user, merchant=merchant, role="viewer")

    added = admin_client.post(add, fields)
    changed = admin_client.post(change_url(member), {**fields, "user": user.pk})

    assert (added.status_code, changed.status_code) == (403, 403)
    assert list(MerchantMember.objects.values_list("user", "role")) == [(user.pk, "viewer")]
    delete = reverse("admin:payments_merchantmember_delete", args=[member.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not MerchantMember.objects.exists()


def test_merchant_page_hides_secrets_and_edits_only_name_and_active(
    admin_client, merchant_credentials
):
    """The merchant page never shows the API key, its hash or the webhook secret, and only
    name, is_active and the allowed hosts (a required, validated list) can be changed."""
    merchant = merchant_credentials.merchant
    page = admin_client.get(change_url(merchant)).content.decode()
    for secret in (merchant_credentials.api_key, merchant.api_key_hash, merchant.webhook_secret):
        assert secret not in page
    assert merchant.api_key_prefix not in page

    response = admin_client.post(
        change_url(merchant),
        {
            "name": "Renamed",
            "app_id": "app_hijack",
            "webhook_secret": "x",
            "allowed_hosts": "shop.example, .cdn.example",
        },
    )

    assert response.status_code == 302
    before = (merchant.app_id, merchant.webhook_secret, merchant.api_key_hash)
    merchant.refresh_from_db()
    assert (merchant.name, merchant.is_active) == ("Renamed", False)
    assert merchant.allowed_hosts == ["shop.example", ".cdn.example"]
    assert (merchant.app_id, merchant.webhook_secret, merchant.api_key_hash) == before
