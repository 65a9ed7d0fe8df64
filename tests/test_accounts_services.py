"""The receiver's services (accounts/services.py): idempotent apply, start and reconcile.

The payments API is mocked with ``responses``; accounts reaches it only over HTTP.
"""

import json
import threading
from datetime import timedelta

import pytest
import requests
import responses
from django.db import connection
from django.utils import timezone

from accounts import services
from accounts.models import Account, LedgerEntry, Recharge
from accounts.payments_client import PaymentsApiError, PaymentsClient

Status = Recharge.Status
Source = LedgerEntry.Source
API = "https://payments.example"
CREATE_URL = f"{API}/api/payments/recharges/"

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def client():
    return PaymentsClient(base_url=API + "/", api_key="sk_test_key", timeout=2)


@pytest.fixture
def payments_api():
    """The payments API, mocked; register replies with ``payments_api.add(...)``."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        yield mocked


def result_for(recharge, **overrides):
    """What payments says about ``recharge`` (a notification's data or a queried order)."""
    return {
        "tx_no": recharge.tx_no or "TX-FROM-PAYMENTS",
        "out_trade_no": recharge.out_trade_no,
        "account_no": recharge.account.account_no,
        "amount": recharge.amount,
        "currency": recharge.currency,
        "status": 100,
        "paid_at": None,
        **overrides,
    }


def order_for(recharge, **overrides):
    """The order JSON the payments API answers with."""
    return {
        **result_for(recharge, status=0),
        "cashier_url": f"https://pay.example/pay/{recharge.tx_no}/",
        **overrides,
    }


def balance(account):
    return Account.objects.values_list("balance", flat=True).get(pk=account.pk)


def apply(result, source=Source.NOTIFICATION):
    return services.recharge_apply_result(result=result, source=source)


def assert_untouched(recharge):
    """The recharge is still pending and nothing was credited."""
    stored = Recharge.objects.get(pk=recharge.pk)
    assert (stored.status, stored.closed_by) == (Status.PENDING, "")
    assert balance(recharge.account) == 0
    assert not LedgerEntry.objects.exists()


# --- account ------------------------------------------------------------------------------


def test_account_create_opens_an_empty_account(user):
    """A new account has a zero balance, the currency given and a 14-character number."""
    account = services.account_create(user=user, currency="USD")

    assert (account.balance, account.currency, account.user) == (0, "USD", user)
    assert account.account_no.startswith("AC") and len(account.account_no) == 14


# --- recharge_apply_result ----------------------------------------------------------------


def test_success_is_applied_once_then_duplicate(recharge, account):
    """First time "applied": status 100, one ledger entry, balance credited; the same
    result again is a "duplicate" and changes nothing."""
    assert apply(result_for(recharge)) == "applied"
    assert apply(result_for(recharge)) == "duplicate"
    assert apply(result_for(recharge), Source.RECONCILIATION) == "duplicate"

    recharge.refresh_from_db()
    assert (recharge.status, recharge.closed_by) == (Status.SUCCEEDED, Source.NOTIFICATION)
    assert balance(account) == 1000
    entry = LedgerEntry.objects.get()
    assert (entry.account, entry.tx_no, entry.amount, entry.currency) == (
        account,
        recharge.tx_no,
        1000,
        "CNY",
    )
    assert entry.source == Source.NOTIFICATION


def test_the_previous_release_still_inserts_recharges_during_a_rolling_deploy(account):
    """The previous release's web processes, still running while the new one migrates, start
    recharges with an INSERT that names no failure_reason: the column's database default
    ("") takes them, where a NOT NULL column without one refused every recharge start."""
    now = timezone.now()
    old = Recharge(account=account, out_trade_no="R-OLD-1", amount=100, currency="CNY")
    fields = [
        field
        for field in Recharge._meta.concrete_fields
        if not field.primary_key and field.name != "failure_reason"
    ]
    values = [field.get_db_prep_save(field.pre_save(old, True), connection) for field in fields]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(Recharge._meta.db_table)} "
        f"({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )

    with connection.cursor() as cursor:
        cursor.execute(sql, values)

    inserted = Recharge.objects.get(out_trade_no="R-OLD-1")
    assert (inserted.failure_reason, inserted.created_at >= now) == ("", True)


def test_failure_is_applied_without_credit(recharge, account):
    """A failed result closes the recharge as 200 and credits nothing."""
    assert apply(result_for(recharge, status=200)) == "applied"
    assert apply(result_for(recharge, status=200)) == "duplicate"

    recharge.refresh_from_db()
    assert recharge.status == Status.FAILED
    assert balance(account) == 0
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize(
    ("result", "stored"),
    [
        ({"status": 200, "failure_reason": "cancelled"}, "cancelled"),
        ({"status": 200}, ""),  # a notification frozen before the field existed
        ({"status": 200, "failure_reason": None}, ""),
        ({"status": 200, "failure_reason": "x" * 40}, "x" * 32),  # a queried order: unchecked
        ({"status": 100, "failure_reason": "declined"}, ""),  # only a failure has a reason
    ],
)
def test_the_failure_reason_is_kept_with_a_final_result(recharge, result, stored):
    """The reason payments gives for a failure is stored on the recharge (so the user is told
    why), bounded to the column; absent, null or on a success it is empty."""
    assert apply(result_for(recharge, **result)) == "applied"

    recharge.refresh_from_db()
    assert recharge.failure_reason == stored


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", 1001),
        ("amount", 100000),
        ("currency", "USD"),
        ("account_no", "AC999999999999"),
        ("tx_no", "TX-SOMEONE-ELSES"),
        ("status", 300),
    ],
)
def test_result_disagreeing_with_our_recharge_is_never_applied(recharge, field, value):
    """A different amount, currency, account, tx_no or an unknown status: ResultMismatch
    naming the field, and nothing changes."""
    with pytest.raises(services.ResultMismatch, match=field if field != "status" else "status"):
        apply(result_for(recharge, **{field: value}))

    assert_untouched(recharge)


def test_unknown_out_trade_no_raises(recharge):
    """A result for a recharge we never started: UnknownRecharge, nothing changes."""
    with pytest.raises(services.UnknownRecharge):
        apply(result_for(recharge, out_trade_no="R-NOT-OURS"))

    assert_untouched(recharge)


@pytest.mark.parametrize(("first", "then"), [(100, 200), (200, 100)])
def test_conflicting_final_status_is_a_mismatch(recharge, account, first, then):
    """Already final, a result with the other final status is refused, saying how it ended
    ("recharge already succeeded"): status, ledger and balance stay as the first result
    left them."""
    apply(result_for(recharge, status=first))
    ended = {100: "succeeded", 200: "failed"}[first]

    with pytest.raises(services.ResultMismatch, match=f"^recharge already {ended}$"):
        apply(result_for(recharge, status=then))

    recharge.refresh_from_db()
    assert recharge.status == first
    assert balance(account) == (1000 if first == 100 else 0)
    assert LedgerEntry.objects.count() == (1 if first == 100 else 0)


def test_pending_result_changes_nothing(recharge):
    """Status 0 (the payer has not paid yet): "pending", nothing written."""
    assert apply(result_for(recharge, status=0)) == "pending"

    assert_untouched(recharge)


def test_result_for_a_recharge_without_tx_no_records_it(recharge_factory, account):
    """Our create call never returned: the first result tells us the tx_no."""
    recharge = recharge_factory(tx_no=None)

    assert apply(result_for(recharge, tx_no="TX-LEARNED")) == "applied"

    recharge.refresh_from_db()
    assert (recharge.tx_no, recharge.status) == ("TX-LEARNED", Status.SUCCEEDED)
    assert LedgerEntry.objects.get().tx_no == "TX-LEARNED"
    assert balance(account) == 1000


@pytest.mark.django_db(transaction=True)
def test_concurrent_applies_credit_once(recharge, account):
    """A notification and reconciliation racing with the same success credit exactly once."""
    barrier = threading.Barrier(3)
    outcomes = []

    def deliver(source):
        try:
            barrier.wait()
            outcomes.append(apply(result_for(recharge), source))
        finally:
            connection.close()

    sources = [Source.NOTIFICATION, Source.RECONCILIATION, Source.NOTIFICATION]
    threads = [threading.Thread(target=deliver, args=(source,)) for source in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["applied", "duplicate", "duplicate"]
    assert LedgerEntry.objects.count() == 1
    assert balance(account) == 1000


# --- recharge_start -----------------------------------------------------------------------


def test_start_creates_the_order_and_keeps_tx_no_and_cashier_url(
    account, client, payments_api, settings
):
    """The recharge is recorded, the order created with our URLs, the answer stored."""
    settings.ACCOUNTS_PUBLIC_URL = "https://wallet.example/"
    payments_api.add(
        responses.POST,
        CREATE_URL,
        status=201,
        json={"tx_no": "TX-NEW", "cashier_url": "https://pay.example/pay/TX-NEW/", "status": 0},
    )

    recharge = services.recharge_start(account=account, amount=2500, client=client)

    stored = Recharge.objects.get()
    assert stored.pk == recharge.pk
    assert (stored.tx_no, stored.cashier_url) == ("TX-NEW", "https://pay.example/pay/TX-NEW/")
    assert (stored.amount, stored.currency, stored.status) == (2500, "CNY", Status.PENDING)
    request = payments_api.calls[0].request
    assert request.headers["Authorization"] == "Bearer sk_test_key"
    assert json.loads(request.body) == {
        "out_trade_no": stored.out_trade_no,
        "account_no": account.account_no,
        "amount": 2500,
        "currency": "CNY",
        "notify_url": "https://wallet.example/api/accounts/notify/",
        "return_url": f"https://wallet.example/recharges/{stored.out_trade_no}/",
    }


@pytest.mark.parametrize(
    ("reply", "status_code"),
    [
        ({"status": 500, "body": "down"}, 500),
        ({"status": 409, "json": {"detail": "conflict"}}, 409),
        ({"body": requests.ConnectionError("refused")}, None),
        ({"body": requests.ReadTimeout("slow")}, None),
    ],
)
def test_start_keeps_the_recharge_when_the_api_fails(
    account, client, payments_api, reply, status_code
):
    """An API failure raises PaymentsApiError, but the recharge row stays (pending, no tx_no)
    for reconciliation to finish."""
    payments_api.add(responses.POST, CREATE_URL, **reply)

    with pytest.raises(PaymentsApiError) as error:
        services.recharge_start(account=account, amount=2500, client=client)

    assert error.value.status_code == status_code
    stored = Recharge.objects.get()
    assert (stored.status, stored.tx_no, stored.amount) == (Status.PENDING, None, 2500)


# --- reconciliation -----------------------------------------------------------------------


def test_reconcile_queries_the_order_and_applies_the_answer(
    recharge, account, client, payments_api
):
    """A pending recharge with a tx_no is queried by GET; success is applied and credited,
    closed by reconciliation."""
    payments_api.add(
        responses.GET, f"{CREATE_URL}{recharge.tx_no}/", json=order_for(recharge, status=100)
    )

    assert services.recharge_reconcile(recharge=recharge, client=client) == "applied"

    recharge.refresh_from_db()
    assert (recharge.status, recharge.closed_by) == (Status.SUCCEEDED, Source.RECONCILIATION)
    assert recharge.last_checked_at is not None
    assert balance(account) == 1000
    assert LedgerEntry.objects.get().source == Source.RECONCILIATION


def test_reconcile_of_a_still_pending_order_only_notes_the_check(recharge, client, payments_api):
    """Payments says 0: "pending", the check time is recorded, nothing else."""
    payments_api.add(responses.GET, f"{CREATE_URL}{recharge.tx_no}/", json=order_for(recharge))

    assert services.recharge_reconcile(recharge=recharge, client=client) == "pending"

    recharge.refresh_from_db()
    assert recharge.last_checked_at is not None
    assert_untouched(recharge)


def test_reconcile_without_tx_no_repeats_the_create(recharge_factory, client, payments_api):
    """A recharge whose create never returned: the (idempotent) create is sent again with
    the same out_trade_no, and its tx_no and cashier_url are recorded."""
    recharge = recharge_factory(tx_no=None)
    payments_api.add(
        responses.POST,
        CREATE_URL,
        status=200,
        json=order_for(recharge, tx_no="TX-FOUND", cashier_url="https://pay.example/pay/TX-FOUND/"),
    )

    assert services.recharge_reconcile(recharge=recharge, client=client) == "pending"

    sent = json.loads(payments_api.calls[0].request.body)
    assert (sent["out_trade_no"], sent["amount"]) == (recharge.out_trade_no, 1000)
    recharge.refresh_from_db()
    assert (recharge.tx_no, recharge.cashier_url) == (
        "TX-FOUND",
        "https://pay.example/pay/TX-FOUND/",
    )
    assert recharge.status == Status.PENDING


def make_old(*recharges, minutes=10):
    Recharge.objects.filter(pk__in=[r.pk for r in recharges]).update(
        created_at=timezone.now() - timedelta(minutes=minutes)
    )


@pytest.fixture
def reconcile_settings(settings):
    settings.ACCOUNTS_PAYMENTS_API_URL = API
    settings.ACCOUNTS_PAYMENTS_API_KEY = "sk_test_key"
    settings.ACCOUNTS_RECONCILE_AFTER = 300
    settings.ACCOUNTS_RECONCILE_BATCH = 200
    return settings


def test_reconcile_pending_only_picks_recharges_older_than_the_threshold(
    recharge_factory, payments_api, reconcile_settings
):
    """Only pending recharges older than ACCOUNTS_RECONCILE_AFTER are queried."""
    old, young, old_but_closed = recharge_factory(), recharge_factory(), recharge_factory()
    apply(result_for(old_but_closed, status=200))
    make_old(old, old_but_closed)
    make_old(young, minutes=4)
    payments_api.add(responses.GET, f"{CREATE_URL}{old.tx_no}/", json=order_for(old, status=100))

    assert services.recharges_reconcile_pending() == {"applied": 1}

    assert [call.request.url for call in payments_api.calls] == [f"{CREATE_URL}{old.tx_no}/"]
    assert Recharge.objects.get(pk=young.pk).last_checked_at is None


def test_reconcile_pending_stops_on_an_unreachable_api_and_resumes_later(
    recharge_factory, payments_api, reconcile_settings
):
    """The API is down: the tick stops after the first refused call (the others are not
    tried, nor marked checked); the next tick, with the API back, settles the untried ones,
    and the one tried during the outage is asked again once ACCOUNTS_RECONCILE_AFTER has
    passed since that check."""
    recharges = [recharge_factory() for _ in range(3)]
    make_old(*recharges)
    for recharge in recharges:
        payments_api.add(
            responses.GET, f"{CREATE_URL}{recharge.tx_no}/", body=requests.ConnectionError("down")
        )

    assert services.recharges_reconcile_pending() == {"unreachable": 1}
    assert len(payments_api.calls) == 1
    [tried] = Recharge.objects.filter(last_checked_at__isnull=False)

    payments_api.reset()
    for recharge in recharges:
        payments_api.add(
            responses.GET, f"{CREATE_URL}{recharge.tx_no}/", json=order_for(recharge, status=100)
        )

    assert services.recharges_reconcile_pending() == {"applied": 2}
    assert Recharge.objects.get(pk=tried.pk).status == Status.PENDING
    Recharge.objects.filter(pk=tried.pk).update(last_checked_at=timezone.now() - timedelta(hours=1))

    assert services.recharges_reconcile_pending() == {"applied": 1}
    assert payments_api.calls[-1].request.url == f"{CREATE_URL}{tried.tx_no}/"
    assert set(Recharge.objects.values_list("status", flat=True)) == {Status.SUCCEEDED}
    assert LedgerEntry.objects.count() == 3


def test_reconcile_pending_counts_errors_and_mismatches_and_goes_on(
    recharge_factory, payments_api, reconcile_settings
):
    """An API error answer (404) or a disagreeing order is counted, and the tick goes on."""
    missing, disagreeing, fine = recharge_factory(), recharge_factory(), recharge_factory()
    make_old(missing, disagreeing, fine)
    payments_api.add(responses.GET, f"{CREATE_URL}{missing.tx_no}/", status=404, json={})
    payments_api.add(
        responses.GET,
        f"{CREATE_URL}{disagreeing.tx_no}/",
        json=order_for(disagreeing, status=100, amount=1),
    )
    payments_api.add(responses.GET, f"{CREATE_URL}{fine.tx_no}/", json=order_for(fine, status=200))

    assert services.recharges_reconcile_pending() == {"api_error": 1, "mismatch": 1, "applied": 1}
    assert Recharge.objects.get(pk=disagreeing.pk).status == Status.PENDING
    assert Recharge.objects.get(pk=fine.pk).status == Status.FAILED


def test_reconcile_pending_skips_a_recharge_another_run_claimed_meanwhile(
    recharge_factory, payments_api, reconcile_settings, monkeypatch
):
    """Two overlapping runs (two beats, a slow tick) never query the same recharge: a
    recharge whose last_checked_at changed after it was selected is skipped."""
    first, second = recharge_factory(), recharge_factory()
    make_old(first, second)
    payments_api.add(
        responses.GET, f"{CREATE_URL}{second.tx_no}/", json=order_for(second, status=100)
    )
    selected = list(services.recharges_to_reconcile(now=timezone.now()))
    # Another run claims `first` between this run's select and its claim.
    Recharge.objects.filter(pk=first.pk).update(last_checked_at=timezone.now())
    monkeypatch.setattr(services, "recharges_to_reconcile", lambda now: selected)

    assert services.recharges_reconcile_pending() == {"applied": 1}
    assert [call.request.url for call in payments_api.calls] == [f"{CREATE_URL}{second.tx_no}/"]
