"""The pages staff read a case on (issue 12): action buttons on the page itself, every attempt
with the request as sent, links between the rows of one case, money and times as people
read them."""

import json
import re
from datetime import timedelta

import pytest
import responses
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from accounts.models import InboundNotification, LedgerEntry, Recharge
from notifications.conf import notify_settings
from notifications.models import DeliveryAttempt, Notification
from notifications.services import notifications_prune
from payments.models import RechargeOrder
from payments.services import recharge_order_create, recharge_order_pay
from tests.conftest import WEBHOOK_SECRET
from tests.helpers import order_request

PAYMENTS_API = "http://payments.test"
Status = RechargeOrder.Status
State = Notification.State
MOMENT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")


@pytest.fixture(autouse=True)
def _payments_api(settings):
    settings.ACCOUNTS_PAYMENTS_API_URL = PAYMENTS_API


@pytest.fixture
def paid(merchant, account):
    """A paid order of ``account`` (its notification exhausted) and accounts' recharge."""
    order, _ = recharge_order_create(
        **order_request(merchant=merchant, out_trade_no="R-P-1", account_no=account.account_no)
    )
    recharge_order_pay(tx_no=order.tx_no)
    Notification.objects.filter(subject=order.tx_no).update(state=State.EXHAUSTED)
    Recharge.objects.create(
        account=account, out_trade_no="R-P-1", tx_no=order.tx_no, amount=1234, currency="CNY"
    )
    order.refresh_from_db()
    return order


@pytest.fixture
def pending(merchant):
    return recharge_order_create(**order_request(merchant=merchant, out_trade_no="R-Q-1"))[0]


def change_url(obj) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def act_url(obj, action: str) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_act", args=[obj.pk, action])


def buttons(client, obj) -> list[str]:
    """The labels of the action buttons on ``obj``'s change page."""
    page = client.get(change_url(obj))
    assert page.status_code == 200
    return [action["label"] for action in page.context.get("page_actions", [])]


def press(client, obj, action: str) -> list[str]:
    """POST a page action; asserts it redirects back to the page; the messages shown."""
    response = client.post(act_url(obj, action), follow=True)
    assert response.redirect_chain == [(change_url(obj), 302)]
    return [str(message) for message in response.context["messages"]]


def notification_of(order) -> Notification:
    return Notification.objects.get(subject=order.tx_no)


def logged(obj) -> list[str]:
    return [entry.get_change_message() for entry in LogEntry.objects.filter(object_id=obj.pk)]


# --- Buttons -------------------------------------------------------------------------------


def test_each_page_offers_the_actions_that_apply(admin_client, paid, pending):
    """A final order offers "Resend notification", a pending one "Expire"; a notification
    "Resend now"; a recharge "Reconcile now"."""
    assert buttons(admin_client, paid) == ["Resend notification"]
    assert buttons(admin_client, pending) == ["Expire"]
    assert buttons(admin_client, notification_of(paid)) == ["Resend now"]
    assert buttons(admin_client, Recharge.objects.get()) == ["Reconcile now"]


def test_resend_on_the_order_page_queues_it_logs_and_says_so(
    admin_client, paid, django_capture_on_commit_callbacks
):
    """The order's "Resend notification": the exhausted notification is due now, a worker is
    woken after commit, the History says so, and the message says it was queued."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notes = press(admin_client, paid, "resend")

    notification = notification_of(paid)
    assert notification.state == State.PENDING and notification.next_attempt_at <= timezone.now()
    assert len(callbacks) == 1
    assert notes == [
        "Resend queued: 1 notification(s) due now; a worker sends it within seconds (unless "
        "its endpoint is failing or disabled) and the attempt appears below."
    ]
    assert logged(paid) == ["Resend notification: 1 scheduled."]


def test_expire_on_the_order_page_fails_a_pending_order(admin_client, pending):
    """ "Expire" moves the pending order to failed (expired), logged, with a message."""
    notes = press(admin_client, pending, "expire")

    pending.refresh_from_db()
    assert (pending.status, pending.failure_reason) == (Status.FAILED, "expired")
    assert notes == ["Expired: the order failed; the merchant is being notified."]
    assert logged(pending) == ["Expire: expired."]


def test_an_action_that_no_longer_applies_changes_nothing(admin_client, paid):
    """ "Expire" posted for an order paid meanwhile: nothing happens, and the message says so."""
    notes = press(admin_client, paid, "expire")

    paid.refresh_from_db()
    assert paid.status == Status.SUCCEEDED
    assert notes == ["Expire: not done, it does not apply to this row any more."]
    assert logged(paid) == []


def test_resend_now_on_the_notification_page(admin_client, paid):
    """The notification's "Resend now" makes it due now and says it was queued."""
    notification = notification_of(paid)

    notes = press(admin_client, notification, "resend")

    notification.refresh_from_db()
    assert notification.state == State.PENDING
    assert notes[0].startswith("Resend queued: the attempt is due now;")
    assert logged(notification) == ["Resend now: scheduled."]


def test_resend_now_while_an_attempt_is_in_flight_says_not_resent(admin_client, paid):
    """An attempt in flight: nothing is rescheduled and the message says why."""
    notification = notification_of(paid)
    Notification.objects.filter(pk=notification.pk).update(state=State.SENDING)

    notes = press(admin_client, notification, "resend")

    assert notification_of(paid).state == State.SENDING
    assert notes == ["Not resent: an attempt is in flight; look again shortly."]


def test_an_order_whose_notification_was_pruned_says_so_and_resend_too(admin_client, paid):
    """Past NOTIFY_RETENTION the delivered notification is deleted: the order page says so
    (not that the merchant will be notified), and "Resend notification" says nothing is
    left to send (not that an attempt is in flight)."""
    delivered_at = timezone.now() - timedelta(seconds=notify_settings.RETENTION + 60)
    Notification.objects.filter(subject=paid.tx_no).update(
        state=State.DELIVERED, delivered_at=delivered_at
    )
    notifications_prune(now=timezone.now(), batch_size=10, budget_seconds=5)

    page = admin_client.get(change_url(paid)).content.decode()
    notes = press(admin_client, paid, "resend")

    assert "None left: its notification was delivered, then deleted after" in page
    assert notes == [
        "Not resent: its notification was delivered, then deleted after the retention "
        "period (NOTIFY_RETENTION); nothing is left to send. The merchant can query the "
        "order through the API."
    ]


@responses.activate
def test_reconcile_now_on_the_recharge_page_says_what_it_found(admin_client, paid):
    """ "Reconcile now" asks payments about this recharge, credits it, and says "credited
    now"; pressed again, "already credited"."""
    recharge = Recharge.objects.get()
    responses.get(
        f"{PAYMENTS_API}/api/payments/recharges/{paid.tx_no}/",
        json={
            "tx_no": paid.tx_no,
            "out_trade_no": "R-P-1",
            "account_no": recharge.account.account_no,
            "amount": 1234,
            "currency": "CNY",
            "status": 100,
            "paid_at": None,
            "cashier_url": f"{PAYMENTS_API}/pay/{paid.tx_no}/",
        },
    )

    first = press(admin_client, recharge, "reconcile")
    second = press(admin_client, recharge, "reconcile")

    assert first == ["Asked payments: 1 credited now."]
    assert second == ["Asked payments: 1 already credited."]
    assert LedgerEntry.objects.get().tx_no == paid.tx_no


@pytest.fixture
def viewer(client, db, fast_password_hashing):
    """Staff who may view orders, notifications and recharges, and change nothing."""
    user = get_user_model().objects.create_user("viewer", password="pw", is_staff=True)
    for codename in ("view_rechargeorder", "view_notification", "view_recharge"):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client.force_login(user)
    return client


def test_view_only_staff_see_no_button_and_their_posts_are_refused(viewer, paid, pending):
    """No button on any page; each action POSTed anyway is a 403 and changes nothing."""
    recharge = Recharge.objects.get()
    notification = notification_of(paid)
    targets = [(paid, "resend"), (pending, "expire"), (notification, "resend")]
    targets.append((recharge, "reconcile"))

    for obj, action in targets:
        assert buttons(viewer, obj) == [], obj
        assert viewer.post(act_url(obj, action)).status_code == 403, obj

    pending.refresh_from_db()
    assert pending.status == Status.PENDING
    assert notification_of(paid).state == State.EXHAUSTED
    assert not LogEntry.objects.exists()


def test_actions_are_post_only_and_unknown_ones_are_404(admin_client, pending):
    """GET on an action's URL is a 405 and changes nothing; an unknown action is a 404."""
    assert admin_client.get(act_url(pending, "expire")).status_code == 405
    assert admin_client.post(act_url(pending, "delete")).status_code == 404
    pending.refresh_from_db()
    assert pending.status == Status.PENDING


# --- The notification page: every attempt, the request as sent ----------------------------


def test_the_notification_page_shows_each_attempt_request_and_response(admin_client, paid):
    """The frozen body pretty-printed; per attempt: when (to the second, with the zone), how
    long, the request headers sent, the status, error and response excerpt, escaped; never
    the signing secret."""
    notification = notification_of(paid)
    headers = {
        "User-Agent": "recharge-notify",
        "Content-Type": "application/json",
        "webhook-id": notification.webhook_id,
        "webhook-timestamp": "1764252202",
        "webhook-signature": "v1,c2lnbmF0dXJl",
    }
    DeliveryAttempt.objects.create(
        notification=notification,
        number=1,
        started_at=timezone.now(),
        duration_ms=321,
        status_code=500,
        request_headers=headers,
        response_excerpt="<b>boom</b>",
        error="HTTP 500",
        succeeded=False,
    )

    content = admin_client.get(change_url(notification)).content.decode()

    pretty = json.dumps(json.loads(notification.body), indent=2, ensure_ascii=False)
    assert pretty.replace('"', "&quot;") in content
    attempts = content.partition('class="attempts"')[2]
    for shown in ("321 ms", "500", "HTTP 500", "&lt;b&gt;boom&lt;/b&gt;", "v1,c2lnbmF0dXJl"):
        assert shown in attempts, shown
    assert f"webhook-id: {notification.webhook_id}" in attempts
    assert MOMENT.search(attempts)
    assert "<b>boom</b>" not in content
    assert WEBHOOK_SECRET not in content


def test_the_notification_list_finds_a_webhook_id(admin_client, paid, pending):
    """The notification list's search takes the webhook-id a merchant quotes."""
    notification = notification_of(paid)
    url = reverse("admin:notifications_notification_changelist")

    response = admin_client.get(url, {"q": notification.webhook_id})

    assert [n.pk for n in response.context["cl"].result_list] == [notification.pk]


# --- Links between the rows of one case ----------------------------------------------------


def hrefs(client, obj) -> list[str]:
    content = client.get(change_url(obj)).content.decode()
    return [link.replace("&amp;", "&") for link in re.findall(r'href="([^"]+\?q=[^"]+)"', content)]


def test_the_pages_of_one_case_link_to_each_other(admin_client, paid, account):
    """Order → accounts' recharge, receipt, ledger entry, account; recharge, receipt and ledger
    entry → the order, its notifications and each other (all by admin search, so no link
    names a row the user may not view); recharge → its account's page. Each search link
    opens a list holding exactly the row of this case."""
    notification = notification_of(paid)
    receipt = InboundNotification.objects.create(
        webhook_id=notification.webhook_id, tx_no=paid.tx_no, outcome="applied"
    )
    entry = LedgerEntry.objects.create(
        account=account, tx_no=paid.tx_no, amount=1234, currency="CNY", source="notification"
    )
    recharge = Recharge.objects.get()

    from_order = hrefs(admin_client, paid)
    from_recharge = hrefs(admin_client, recharge)

    assert from_order[:4] == [
        f"{reverse('admin:accounts_recharge_changelist')}?q={paid.tx_no}",
        f"{reverse('admin:accounts_inboundnotification_changelist')}?q={paid.tx_no}",
        f"{reverse('admin:accounts_ledgerentry_changelist')}?q={paid.tx_no}",
        f"{reverse('admin:accounts_account_changelist')}?q={account.account_no}",
    ]
    assert f"{reverse('admin:payments_rechargeorder_changelist')}?q={paid.tx_no}" in from_recharge
    for link, row in zip(from_order[:4], [recharge, receipt, entry, account], strict=True):
        assert [r.pk for r in admin_client.get(link).context["cl"].result_list] == [row.pk]
    assert f"{reverse('admin:accounts_inboundnotification_changelist')}?q={paid.tx_no}" in (
        from_recharge
    )
    assert f"{reverse('admin:accounts_ledgerentry_changelist')}?q={paid.tx_no}" in from_recharge
    recharge_page = admin_client.get(change_url(recharge)).content.decode()
    assert f'href="{change_url(account)}"' in recharge_page
    receipt_page = admin_client.get(change_url(receipt)).content.decode()
    notifications = reverse("admin:notifications_notification_changelist")
    assert f'href="{notifications}?q={notification.webhook_id}"' in receipt_page


# --- Money and time as people read them ----------------------------------------------------


def test_titles_show_money_in_major_units_and_times_to_the_second(admin_client, paid):
    """The order's title reads "5.00 CNY" style amounts, not minor units; the order list
    shows its time to the second with the zone."""
    page = admin_client.get(change_url(paid)).content.decode()
    listing = admin_client.get(reverse("admin:payments_rechargeorder_changelist")).content

    assert f"{paid.tx_no} 12.34 CNY (Succeeded)" in page
    assert str(paid) == f"{paid.tx_no} 12.34 CNY (Succeeded)"
    assert str(Recharge.objects.get()) == "R-P-1 12.34 CNY (Pending)"
    assert MOMENT.search(listing.decode())
