"""Staff's Find reads every table through an index (PostgreSQL's plans): one search runs each
app's searcher for the term and again for each lead it found, so a query that scanned a whole
table (orders, receipts, accounts) would cost every search the size of the history."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

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


def plans_of(run) -> list[str]:
    """The plan of every query ``run()`` makes, with sequential scans priced out of reach, so
    a plan still reading a table without an index condition has no index to use."""
    with CaptureQueriesContext(connection) as captured:
        run()
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for query in captured.captured_queries:
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
