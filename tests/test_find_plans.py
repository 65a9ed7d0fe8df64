"""Staff's Find and the admin lists' search boxes read every table through an index
(PostgreSQL's plans): one Find runs each app's searcher for the term and again for each lead
it found, so a query that scanned a whole table (orders, receipts, the ledger) would cost
every search the size of the history."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import InboundNotification
from core.search import staff_search
from tests.helpers import order_request

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="query plans are PostgreSQL's"
)
# The tables Find reads, each of which grows with every order.
TABLES = [
    "payments_rechargeorder",
    "payments_merchant",
    "notifications_notification",
    "accounts_recharge",
    "accounts_inboundnotification",
    "accounts_ledgerentry",
    "accounts_account",
    "auth_user",
]


def plans_of(run, *, naming: str = "") -> list[str]:
    """The plan of every query ``run()`` makes (those whose SQL holds ``naming``), with
    sequential scans priced out of reach, so a plan still reading a table without an index
    condition has no index to use."""
    with CaptureQueriesContext(connection) as captured:
        run()
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query in captured.captured_queries:
            if naming not in query["sql"]:
                continue
            cursor.execute(f"EXPLAIN {query['sql']}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return plans


def whole_table_reads(plan: str) -> list[str]:
    """The plan's nodes that read one of ``TABLES`` whole: a Seq Scan, or an index walked end
    to end with only a Filter (no Index Cond on the next line)."""
    lines = plan.splitlines()
    reads = []
    for line, following in zip(lines, [*lines[1:], ""], strict=True):
        scan = re.search(
            r"(Seq Scan|Index Scan|Index Only Scan)(?: Backward)?(?: using \S+)? on (\w+)", line
        )
        if scan and scan[2] in TABLES and "Index Cond" not in following:
            reads.append(line.strip())
    return reads


@pytest.mark.django_db
@pytest.mark.parametrize(
    "term", ["R-NOT-THERE", "AC000000000001", "msg_0123456789abcdef0123456789abcdef", "bob"]
)
def test_every_query_of_a_search_uses_an_index(merchant, account, term):
    """An out_trade_no, an account_no, a webhook-id, a username: whatever the term, and for
    the leads it finds, no query reads a table whole."""
    from payments.services import recharge_order_create

    recharge_order_create(**order_request(merchant=merchant, account_no=account.account_no))
    InboundNotification.objects.create(webhook_id="msg_x", tx_no="T1", out_trade_no="R1")

    plans = plans_of(lambda: staff_search(term=term, visible=lambda row: True))

    assert plans
    assert [read for plan in plans for read in whole_table_reads(plan)] == []


SEARCHABLE_LISTS = [
    "admin:payments_rechargeorder_changelist",
    "admin:notifications_notification_changelist",
    "admin:accounts_recharge_changelist",
    "admin:accounts_inboundnotification_changelist",
    "admin:accounts_ledgerentry_changelist",
    "admin:accounts_account_changelist",
    "admin:notifications_endpoint_changelist",  # each endpoint's undelivered count
]


@pytest.mark.django_db
@pytest.mark.parametrize("changelist", SEARCHABLE_LISTS)
def test_an_admin_lists_search_uses_an_index(admin_client, account, changelist):
    """The search box of the lists staff search (exact identifiers, some through a relation:
    a ledger entry or a recharge by its account's account_no): no query naming the term
    reads a table whole, and no other query of the page does (no count of the whole list,
    "N total", beside the results)."""

    def search():
        assert admin_client.get(reverse(changelist), {"q": "TERM-NOT-THERE"}).status_code == 200

    plans = plans_of(search)

    assert plans
    assert [read for plan in plans for read in whole_table_reads(plan)] == []


def test_a_ledger_entry_is_found_by_its_accounts_account_no(admin_client, account):
    """Through the relation, as Django's own search found it (a quoted term too): the
    account's entries, and none for another account_no."""
    from accounts.models import LedgerEntry

    LedgerEntry.objects.create(
        account=account, tx_no="T-LEDGER-1", amount=100, currency="CNY", source="notification"
    )
    ledger = reverse("admin:accounts_ledgerentry_changelist")

    def found(term: str) -> bool:
        return "T-LEDGER-1" in admin_client.get(ledger, {"q": term}).content.decode()

    assert found(account.account_no) and found(f'"{account.account_no}"')
    assert found("T-LEDGER-1") and not found("AC000000000000")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changelist", ["admin:accounts_ledgerentry_changelist", "admin:accounts_account_changelist"]
)
def test_many_terms_cost_no_more_queries_than_one(admin_client, changelist):
    """The related rows are looked up once for every term together: 50 words in the search
    box make as many queries as one (review: 400 words made 407)."""

    def queries(search: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(reverse(changelist), {"q": search}).status_code == 200
        return len(captured.captured_queries)

    assert queries(" ".join(f"T{n}" for n in range(50))) == queries("T0")
