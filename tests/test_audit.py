"""``audit.checks`` and ``manage.py audit``: the operator's cross-check of payments' orders
against accounts' books."""

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F

from accounts.models import Account, LedgerEntry, Recharge
from accounts.services import recharge_apply_result
from audit.checks import DoubleCredit, audit, audit_snapshot, snapshot_read
from notifications.models import Notification
from payments.contract import recharge_result
from payments.services import (
    recharge_order_create,
    recharge_order_decline,
    recharge_order_pay,
)

pytestmark = pytest.mark.django_db


def _order(merchant, account, *, amount: int, number: int):
    """An order at payments and the recharge accounts started for it, both pending."""
    out_trade_no = f"R{number:04d}"
    order, _ = recharge_order_create(
        merchant=merchant,
        out_trade_no=out_trade_no,
        account_no=account.account_no,
        amount=amount,
        currency=account.currency,
        notify_url="http://wallet.test/api/accounts/notify/",
        return_url=f"http://wallet.test/recharges/{out_trade_no}/",
    )
    Recharge.objects.create(
        account=account,
        out_trade_no=out_trade_no,
        tx_no=order.tx_no,
        amount=amount,
        currency=account.currency,
    )
    return order


def _paid_and_applied(merchant, account, *, amount: int, number: int):
    """An order paid at payments and its result applied by accounts, as a notification does."""
    order = recharge_order_pay(tx_no=_order(merchant, account, amount=amount, number=number).tx_no)
    recharge_apply_result(result=recharge_result(order), source=LedgerEntry.Source.NOTIFICATION)
    return order


def _declined_and_applied(merchant, account, *, amount: int, number: int):
    order = _order(merchant, account, amount=amount, number=number)
    order = recharge_order_decline(tx_no=order.tx_no)
    recharge_apply_result(result=recharge_result(order), source=LedgerEntry.Source.NOTIFICATION)
    return order


def test_clean_books_have_no_disagreements(merchant, account):
    """Paid orders credited once, a declined one not credited: nothing reported, and the
    account's three totals (payments, ledger, balance) agree."""
    _paid_and_applied(merchant, account, amount=1234, number=1)
    _paid_and_applied(merchant, account, amount=1, number=2)
    _declined_and_applied(merchant, account, amount=500, number=3)
    Notification.objects.update(state=Notification.State.DELIVERED)

    report = audit()

    assert report.problems() == []
    assert report.books_balance and report.clean
    [totals] = report.accounts
    assert (totals.succeeded, totals.credited, totals.balance) == (1235, 1235, 1235)
    assert (totals.orders, totals.credits) == (2, 2)


def test_succeeded_order_without_credit_is_reported(merchant, account):
    """payments says succeeded but accounts never credited it (the notification is lost and
    reconciliation has not run): reported with its age, and the books do not balance."""
    order = recharge_order_pay(tx_no=_order(merchant, account, amount=700, number=1).tx_no)

    report = audit()

    [uncredited] = report.uncredited
    assert (uncredited.tx_no, uncredited.amount) == (order.tx_no, 700)
    assert uncredited.age_seconds >= 0
    assert [n.tx_no for n in report.not_closed] == [order.tx_no]
    assert not report.books_balance
    assert report.unbalanced_accounts[0].succeeded == 700


def test_credit_for_failed_order_is_reported(merchant, account):
    """A ledger credit for an order payments declined is money from nowhere: reported."""
    order = _declined_and_applied(merchant, account, amount=300, number=1)
    LedgerEntry.objects.create(
        account=account, tx_no=order.tx_no, amount=300, currency="CNY", source="notification"
    )
    Account.objects.filter(pk=account.pk).update(balance=F("balance") + 300)

    report = audit()

    [unbacked] = report.unbacked_credits
    assert (unbacked.tx_no, unbacked.order_status) == (order.tx_no, 200)
    assert not report.books_balance


def test_credit_for_unknown_tx_no_is_reported(merchant, account):
    """A credit whose tx_no payments has never issued is reported with no order status."""
    LedgerEntry.objects.create(
        account=account, tx_no="2026NOSUCHTX", amount=50, currency="CNY", source="notification"
    )
    Account.objects.filter(pk=account.pk).update(balance=50)

    [unbacked] = audit().unbacked_credits

    assert (unbacked.tx_no, unbacked.order_status) == ("2026NOSUCHTX", None)


def test_amount_mismatch_is_reported(merchant, account):
    """A credit for another amount than the payment: reported field by field, and the
    account's payments total no longer equals its ledger."""
    order = _paid_and_applied(merchant, account, amount=1000, number=1)
    LedgerEntry.objects.filter(tx_no=order.tx_no).update(amount=1001)
    Account.objects.filter(pk=account.pk).update(balance=1001)

    report = audit()

    assert [(m.tx_no, m.what, m.payments, m.accounts) for m in report.mismatches] == [
        (order.tx_no, "ledger amount", 1000, 1001)
    ]
    assert report.unbalanced_accounts[0].credited == 1001
    assert not report.books_balance


def test_balance_differing_from_ledger_is_reported(merchant, account):
    """Account.balance changed without a ledger row: the account is unbalanced even though
    every order matches its credit."""
    _paid_and_applied(merchant, account, amount=250, number=1)
    Account.objects.filter(pk=account.pk).update(balance=F("balance") + 1)

    report = audit()

    [totals] = report.unbalanced_accounts
    assert (totals.succeeded, totals.credited, totals.balance) == (250, 250, 251)
    assert not report.uncredited and not report.mismatches
    assert not report.books_balance


def test_double_credit_is_counted_from_the_rows(merchant, account):
    """The ledger's unique tx_no makes a second credit impossible to insert, so the check is
    pinned on a snapshot: two ledger rows for one tx_no are reported, not trusted away."""
    order = _paid_and_applied(merchant, account, amount=400, number=1)
    snapshot = snapshot_read()
    snapshot.ledger.append(dict(snapshot.ledger[0]))

    report = audit_snapshot(snapshot)

    assert report.double_credits == [DoubleCredit(order.tx_no, 2)]
    assert report.unbalanced_accounts[0].credits == 2
    assert not report.books_balance


def test_exhausted_notification_is_not_clean(merchant, account):
    """Books that balance but a notification waiting for staff: balanced, yet not clean."""
    _paid_and_applied(merchant, account, amount=100, number=1)
    Notification.objects.update(state=Notification.State.EXHAUSTED, last_error="HTTP 503")

    report = audit()

    assert report.books_balance
    assert not report.clean
    assert [e.last_error for e in report.exhausted] == ["HTTP 503"]


def test_audit_only_reads(merchant, account, django_assert_max_num_queries):
    """The audit is a handful of SELECTs, whatever the number of rows: no writes."""
    for number in range(3):
        _paid_and_applied(merchant, account, amount=100 + number, number=number)

    with django_assert_max_num_queries(5) as captured:
        audit()

    assert all(query["sql"].lstrip().upper().startswith("SELECT") for query in captured)


def test_audit_command_exits_zero_when_the_books_agree(merchant, account, capsys):
    """``manage.py audit`` on clean books prints a one-line verdict and returns normally
    (exit status 0)."""
    _paid_and_applied(merchant, account, amount=1234, number=1)
    Notification.objects.update(state=Notification.State.DELIVERED)

    call_command("audit", "--accounts")

    out = capsys.readouterr().out
    assert "books agree: 1 account(s) checked, 0 disagreement(s)" in out
    assert f"{account.account_no}: succeeded 12.34 CNY (1), ledger 12.34 CNY (1)" in out


def test_audit_command_lists_every_disagreement_and_exits_non_zero(merchant, account, capsys):
    """A succeeded order never credited and an exhausted notification: each is listed (the
    uncredited one with its age) and the command fails with exit status 1."""
    order = recharge_order_pay(tx_no=_order(merchant, account, amount=700, number=1).tx_no)
    Notification.objects.update(state=Notification.State.EXHAUSTED, last_error="HTTP 503")

    with pytest.raises(CommandError) as failure:
        call_command("audit")

    assert failure.value.returncode == 1
    assert "4 disagreement(s)" in str(failure.value)
    out = capsys.readouterr().out
    assert f"succeeded, not credited: {order.tx_no} 700 to {account.account_no} (" in out
    assert "s ago)" in out
    assert "recharge R0001 still pending; payments says 100" in out
    assert "notification exhausted:" in out and "(HTTP 503)" in out


def test_audit_command_refuses_an_unknown_merchant(db):
    """``--merchant`` names a merchant by app_id; an unknown one is an error, not an empty
    (and so falsely clean) audit."""
    with pytest.raises(CommandError, match="no merchant with app_id 'app_nope'"):
        call_command("audit", "--merchant", "app_nope")
