"""Staff's Find box (core/search.py, ``admin:find``): one search by any identifier a customer
or merchant quotes lists the whole case across the apps, only what the user may view."""

import pytest
from django.urls import reverse

from accounts.models import InboundNotification, LedgerEntry, Recharge
from core import search
from core.search import MATCHES_PER_SEARCHER
from notifications.models import Notification
from payments.selectors import recharge_orders_search
from payments.services import recharge_order_create, recharge_order_pay
from tests.helpers import order_request, staff_user

FIND = reverse("admin:find")


@pytest.fixture
def case(merchant_credentials, account):
    """One "I paid" case on both sides: the paid order, its notification, accounts' recharge
    with the same numbers, the receipt of that notification, its ledger entry; and another
    order of the same account, which only a search by account_no shows."""
    merchant = merchant_credentials.merchant
    order, _ = recharge_order_create(
        **order_request(merchant=merchant, out_trade_no="R-CASE-1", account_no=account.account_no)
    )
    recharge_order_pay(tx_no=order.tx_no)
    other, _ = recharge_order_create(
        **order_request(merchant=merchant, out_trade_no="R-CASE-2", account_no=account.account_no)
    )
    notification = Notification.objects.get(subject=order.tx_no)
    recharge = Recharge.objects.create(
        account=account, out_trade_no="R-CASE-1", tx_no=order.tx_no, amount=1234, currency="CNY"
    )
    receipt = InboundNotification.objects.create(
        webhook_id=notification.webhook_id,
        tx_no=order.tx_no,
        out_trade_no="R-CASE-1",
        outcome="applied",
    )
    entry = LedgerEntry.objects.create(
        account=account, tx_no=order.tx_no, amount=1234, currency="CNY", source="notification"
    )
    return {
        "order": order,
        "other_order": other,
        "notification": notification,
        "recharge": recharge,
        "receipt": receipt,
        "entry": entry,
        "account": account,
        "merchant": merchant,
    }


def found(client, term: str) -> list[str]:
    """The Find page's rows for ``term``, as ``"<model> <change URL>"`` in order shown."""
    response = client.get(FIND, {"q": term})
    assert response.status_code == 200
    return [f"{row['model']} {row['url']}" for row in response.context["results"]]


def row(obj) -> str:
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return f"{opts.model_name} {url}"


THE_CASE = ["order", "notification", "recharge", "receipt", "entry"]


@pytest.mark.parametrize(
    ("quoted", "expected"),
    [
        ("tx_no", THE_CASE),
        ("out_trade_no", THE_CASE),
        # Within an app, what the term itself found first: the receipt.
        ("webhook_id", ["order", "notification", "receipt", "recharge", "entry"]),
    ],
)
def test_any_identifier_of_the_case_lists_the_whole_case_order_first(
    admin_client, case, quoted, expected
):
    """The order's tx_no, the merchant's out_trade_no or the webhook-id a merchant quotes:
    each lists the order first, then its notification, then accounts' recharge, receipt and
    ledger entry, each once and linking to its change page; not the account's other order."""
    term = {
        "tx_no": case["order"].tx_no,
        "out_trade_no": "R-CASE-1",
        "webhook_id": case["notification"].webhook_id,
    }[quoted]

    assert found(admin_client, term) == [row(case[name]) for name in expected]


def test_an_account_no_or_username_lists_the_account_and_its_orders(admin_client, case, user):
    """An account_no lists every order of that account and the account; a username the
    account."""
    by_account_no = found(admin_client, case["account"].account_no)
    by_username = found(admin_client, user.username)

    assert by_account_no == [
        row(case["other_order"]),
        row(case["order"]),
        row(case["account"]),
    ]
    assert by_username == [row(case["account"])]


def test_a_merchant_is_found_by_its_app_id(admin_client, case):
    """The app_id a merchant quotes finds the merchant."""
    assert found(admin_client, case["merchant"].app_id) == [row(case["merchant"])]


@pytest.mark.parametrize(
    "term", ["", "   ", "R-CASE", "msg_0123", "msg_" + "z" * 32, "tx_no", "%", "*"]
)
def test_partial_or_malformed_identifiers_find_nothing(admin_client, case, term):
    """Identifiers match exactly: a prefix, a malformed webhook-id or a wildcard finds
    nothing (no error)."""
    assert found(admin_client, term) == []


def test_secrets_are_not_searchable(admin_client, merchant_credentials, case):
    """The merchant's webhook secret, API key and its hash find nothing."""
    merchant = merchant_credentials.merchant
    for secret in (merchant_credentials.api_key, merchant.webhook_secret, merchant.api_key_hash):
        assert found(admin_client, secret) == []


def test_a_term_too_long_to_be_an_identifier_is_a_400_that_says_so(admin_client, case):
    """Over 100 characters: 400 with the reason, no search."""
    response = admin_client.get(FIND, {"q": "x" * 101})

    assert response.status_code == 400
    assert b"Not an identifier: at most 100 characters" in response.content


@pytest.mark.parametrize("term", ["R-CASE-1\x00", "R-CASE\x01-1"])
def test_a_term_with_a_control_character_is_a_400_that_says_so(admin_client, case, term):
    """A NUL (which PostgreSQL text cannot hold: it was a 500) or another control character
    is no identifier: 400 with the reason, no search."""
    response = admin_client.get(FIND, {"q": term})

    assert response.status_code == 400
    assert b"Not an identifier: no control characters" in response.content


@pytest.fixture
def order_viewer(client, db, fast_password_hashing):
    """Staff who may view orders and nothing else."""
    client.force_login(staff_user("orders", "view_rechargeorder"))
    return client


def test_only_rows_the_user_may_view_are_listed(order_viewer, case):
    """Staff with only the orders' view permission see the order for its tx_no, nothing of
    the other apps' rows."""
    assert found(order_viewer, case["order"].tx_no) == [row(case["order"])]


def test_a_hidden_row_leads_nowhere(order_viewer, case):
    """The webhook-id names a notification and a receipt this user may not view: nothing is
    listed, not even the order they lead to, so the link between the two is not revealed."""
    assert found(order_viewer, case["notification"].webhook_id) == []


def test_the_order_page_shows_its_notifications_only_to_who_may_view_them(order_viewer, case):
    """The order's own page does not show what Find hides from the same user: no
    notification, webhook-id, attempt or merchant response without ``view_notification``;
    with it, all of them."""
    page = reverse("admin:payments_rechargeorder_change", args=[case["order"].pk])
    webhook_id = case["notification"].webhook_id.encode()

    response = order_viewer.get(page)
    assert response.status_code == 200 and case["order"].tx_no.encode() in response.content
    assert webhook_id not in response.content
    assert b"Notifications and delivery attempts" not in response.content

    order_viewer.force_login(staff_user("cases", "view_rechargeorder", "view_notification"))
    assert webhook_id in order_viewer.get(page).content


def test_non_staff_are_sent_to_the_admin_login(client, user, case):
    """A logged-in user without is_staff gets the admin's log-in, not results."""
    client.force_login(user)

    response = client.get(FIND, {"q": case["order"].tx_no})

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_every_admin_page_has_the_find_box(admin_client, case):
    """The Find box is in the header of the index, a list and a change page."""
    pages = [
        reverse("admin:index"),
        reverse("admin:payments_rechargeorder_changelist"),
        reverse("admin:accounts_recharge_change", args=[case["recharge"].pk]),
    ]
    for url in pages:
        content = admin_client.get(url).content.decode()
        assert f'action="{FIND}"' in content, url


def test_at_most_twenty_rows_per_app_and_identifier(admin_client, merchant, account):
    """An account_no naming 25 orders lists the 20 newest of them (and the account): the page
    stays short whatever the history."""
    for number in range(25):
        recharge_order_create(
            **order_request(
                merchant=merchant, out_trade_no=f"MANY-{number}", account_no=account.account_no
            )
        )

    rows = found(admin_client, account.account_no)

    assert len([r for r in rows if r.startswith("rechargeorder ")]) == MATCHES_PER_SEARCHER == 20
    assert rows[-1] == row(account)


def test_registering_a_searcher_again_replaces_it():
    """An app's ready() run twice leaves its searcher registered once, at the new rank."""
    before = list(search._searchers)
    try:
        search.staff_searcher_register(search=recharge_orders_search, rank=5)
        mine = [s for s in search._searchers if s.search is recharge_orders_search]
        assert [s.rank for s in mine] == [5]
    finally:
        search._searchers[:] = before
