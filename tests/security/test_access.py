"""Users and staff: login everywhere, each user only their own, CSRF on every form, a
staff-only admin where money is read-only, and staff actions logged with who did them."""

import logging

import pytest
import responses
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from accounts.models import Account, LedgerEntry, Recharge
from accounts.services import account_create
from notifications.models import Notification
from payments.models import Merchant, RechargeOrder
from payments.services import recharge_order_decline
from tests.security.conftest import db_state

HOME = reverse("accounts:home")
RECHARGE = reverse("accounts:recharge-create")
PAYMENTS_API = "http://payments.test"

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


def status_url(recharge):
    return reverse("accounts:recharge-status", kwargs={"out_trade_no": recharge.out_trade_no})


def admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def mallory(db):
    """A second user, with an account of her own."""
    user = get_user_model().objects.create_user("mallory", password="mallory-password")
    account_create(user=user, currency="CNY")
    return user


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")


@pytest.fixture
def csrf_client():
    """A browser that must present a CSRF token, as real ones do."""
    return Client(enforce_csrf_checks=True)


# --- login and ownership ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", HOME), ("post", RECHARGE), ("get", "status")],
    ids=["home", "recharge form", "recharge status"],
)
def test_pages_require_login(client, recharge_factory, method, path):
    """Anonymous: redirected to the login page, nothing started or shown."""
    recharge = recharge_factory()
    path = status_url(recharge) if path == "status" else path
    before = db_state()

    response = getattr(client, method)(path, {"amount": "10"} if method == "post" else None)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={path}"
    assert db_state() == before


def test_a_user_sees_only_their_own_recharges(client, recharge_factory, mallory):
    """Another user's recharge: 404 on its page, absent from her home page."""
    mine = recharge_factory(out_trade_no="R-ALICE-1")
    client.force_login(mallory)

    assert client.get(status_url(mine)).status_code == 404
    home = client.get(HOME).content.decode()
    assert "R-ALICE-1" not in home
    assert Account.objects.get(user=mallory).account_no in home


def test_user_without_account_gets_403_not_someone_elses(client, db, recharge_factory):
    """A logged-in user with no account never falls back to another's: the no-wallet page
    (403), with no balance and no recharge of anyone's."""
    recharge = recharge_factory()
    lonely = get_user_model().objects.create_user("lonely", password="x")
    client.force_login(lonely)

    response = client.get(HOME)

    assert response.status_code == 403
    page = response.content.decode()
    assert "This login has no wallet" in page
    assert recharge.out_trade_no not in page and recharge.account.account_no not in page


# --- CSRF on every form -------------------------------------------------------------------


def test_login_form_requires_csrf(csrf_client, user):
    """The login form without its CSRF token: 403, not logged in."""
    response = csrf_client.post(
        reverse("login"), {"username": "alice", "password": "alice-password"}
    )

    assert response.status_code == 403
    assert "_auth_user_id" not in csrf_client.session


def test_logout_requires_csrf(csrf_client, user):
    """Logging out is a POST with a token: without it, 403 and still logged in."""
    csrf_client.force_login(user)

    response = csrf_client.post(reverse("logout"))

    assert response.status_code == 403
    # Still logged in: the wallet page (or, for a login without one, the no-wallet page), not
    # the redirect to log in.
    assert csrf_client.get(HOME).status_code in (200, 403)


def test_recharge_form_requires_csrf(csrf_client, user, account):
    """The recharge form without a token: 403, no recharge started."""
    csrf_client.force_login(user)
    before = db_state()

    response = csrf_client.post(RECHARGE, {"amount": "10.00"})

    assert response.status_code == 403
    assert db_state() == before


def test_cashier_form_requires_csrf(csrf_client, order_factory):
    """The cashier's Pay button without a token: 403, the order still pending."""
    order = order_factory()
    before = db_state()

    response = csrf_client.post(
        reverse("payments:cashier", kwargs={"tx_no": order.tx_no}), {"action": "pay"}
    )

    assert response.status_code == 403
    assert db_state() == before


def test_admin_action_requires_csrf(csrf_client, staff, order_factory):
    """An admin action POSTed without a token: 403, nothing expired."""
    csrf_client.force_login(staff)
    order = order_factory()
    before = db_state()

    response = csrf_client.post(
        admin_url(RechargeOrder, "changelist"),
        {"action": "expire_pending", "_selected_action": [order.pk]},
    )

    assert response.status_code == 403
    assert db_state() == before


def test_admin_change_form_requires_csrf(csrf_client, staff, merchant):
    """The merchant change form without a token: 403, the merchant unchanged."""
    csrf_client.force_login(staff)
    before = db_state()

    response = csrf_client.post(
        admin_url(Merchant, "change", merchant.pk),
        {"name": "Hijacked", "is_active": "", "allowed_hosts": "evil.example"},
    )

    assert response.status_code == 403
    assert db_state() == before


# --- the admin: staff only, money read-only -----------------------------------------------


def test_admin_is_for_staff_only(client, user):
    """Anonymous and non-staff users are sent to the admin login, for every admin page."""
    for who in (None, user):
        if who:
            client.force_login(who)
        for url in (
            "/admin/",
            admin_url(RechargeOrder, "changelist"),
            admin_url(Account, "changelist"),
        ):
            response = client.get(url)
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("admin:login"))


def test_admin_login_refuses_non_staff(client, user):
    """Valid credentials of a non-staff user do not open the admin."""
    response = client.post(
        reverse("admin:login"), {"username": "alice", "password": "alice-password"}
    )

    assert response.status_code == 200
    assert "Please enter the correct username and password for a staff account" in (
        response.content.decode()
    )


@pytest.mark.parametrize(
    "model", [RechargeOrder, Account, LedgerEntry, Recharge, Notification], ids=lambda m: m.__name__
)
def test_money_and_ledgers_are_read_only_even_for_superusers(
    client, staff, model, order_factory, account, recharge_factory
):
    """No add, change or delete of orders, balances, ledger entries, recharges or
    notifications from the admin: 403 on each, nothing written."""
    order = order_factory()
    recharge_order_decline(tx_no=order.tx_no)
    recharge_factory()
    LedgerEntry.objects.create(
        account=account, tx_no="TX-L", amount=5, currency="CNY", source="notification"
    )
    obj = model.objects.first()
    client.force_login(staff)
    before = db_state()

    add = client.post(admin_url(model, "add"), {"amount": 1})
    change = client.post(admin_url(model, "change", obj.pk), {"amount": 10**9, "balance": 10**9})
    delete = client.post(admin_url(model, "delete", obj.pk), {"post": "yes"})

    assert (add.status_code, change.status_code, delete.status_code) == (403, 403, 403)
    assert db_state() == before


# --- staff actions are logged with who did them ------------------------------------------


def run_action(client, model, action, objects):
    return client.post(
        admin_url(model, "changelist"),
        {"action": action, "_selected_action": [obj.pk for obj in objects]},
    )


def logged(obj) -> list[tuple[str, int, str]]:
    return [
        (entry.user.username, entry.action_flag, entry.change_message)
        for entry in LogEntry.objects.filter(object_id=str(obj.pk)).order_by("pk")
        if entry.content_type.model_class() is type(obj)
    ]


def test_expire_and_resend_are_logged_with_the_staff_user(
    client, staff, order_factory, deliver_apply_async, caplog
):
    """ "Expire" and "Resend notification" leave an admin LogEntry per order naming the staff
    user and what happened, and a line on the ``staff`` logger."""
    client.force_login(staff)
    order = order_factory()

    with caplog.at_level(logging.INFO, logger="staff"):
        run_action(client, RechargeOrder, "expire_pending", [order])
        run_action(client, RechargeOrder, "resend_notifications", [order])

    assert logged(order) == [
        ("boss", CHANGE, "Expire: expired."),
        ("boss", CHANGE, "Resend notification: 1 scheduled."),
    ]
    assert f"staff action by boss on payments.RechargeOrder {order.pk}: Expire: expired." in (
        caplog.text
    )


def test_notification_resend_is_logged(client, staff, order_factory, deliver_apply_async):
    """The outbox's "Resend now" is logged against the notification, with the user."""
    order = order_factory()
    recharge_order_decline(tx_no=order.tx_no)
    notification = Notification.objects.get(subject=order.tx_no)
    Notification.objects.filter(pk=notification.pk).update(state=Notification.State.EXHAUSTED)
    client.force_login(staff)

    run_action(client, Notification, "resend_now", [notification])

    assert logged(notification) == [("boss", CHANGE, "Resend now: scheduled.")]


@responses.activate
def test_reconcile_is_logged_with_its_outcome(client, staff, account, settings):
    """ "Reconcile now" logs each recharge tried with its outcome, and the staff user."""
    settings.ACCOUNTS_PAYMENTS_API_URL = PAYMENTS_API
    recharge = Recharge.objects.create(
        account=account, out_trade_no="R-1", tx_no="TX-1", amount=100, currency="CNY"
    )
    responses.get(f"{PAYMENTS_API}/api/payments/recharges/TX-1/", status=503, body="down")
    client.force_login(staff)

    run_action(client, Recharge, "reconcile_now", [recharge])

    assert logged(recharge) == [
        ("boss", CHANGE, "Reconcile now: failed: payments API answered 503: down.")
    ]
