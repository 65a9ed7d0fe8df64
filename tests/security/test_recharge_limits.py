"""Per-user limits on starting a recharge (accounts/services.py ``recharge_start``): one
user cannot spend the order-creation budget that every user of the wallet shares at
payments. A refusal is a message on the home page, with nothing written and payments never
called."""

import json
import logging
from datetime import timedelta

import pytest
import responses
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import Recharge
from accounts.payments_client import PaymentsClient
from tests.helpers import run_concurrently
from tests.security.conftest import db_state

RECHARGE = reverse("accounts:recharge-create")
API = "https://payments.example"
CREATE_URL = f"{API}/api/payments/recharges/"
NOW = 1_800_000_030.5  # a fixed clock: the rate's window (from 1_800_000_000) cannot turn

pytestmark = pytest.mark.usefixtures("fast_password_hashing", "fresh_throttles")


@pytest.fixture
def payments_api(settings):
    """The payments API, mocked: every create answers 201 with a tx_no of its own."""
    settings.ACCOUNTS_PAYMENTS_API_URL = API

    def created(request):
        tx_no = "TX-" + json.loads(request.body)["out_trade_no"]
        order = {"tx_no": tx_no, "cashier_url": f"https://pay.example/pay/{tx_no}/", "status": 0}
        return 201, {}, json.dumps(order)

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add_callback(responses.POST, CREATE_URL, callback=created)
        yield mocked


@pytest.fixture
def browser(client, user, account):
    """Alice, logged in, with an account."""
    client.force_login(user)
    return client


@pytest.fixture
def bob_browser(db):
    """A second user, logged in in a browser of his own."""
    bob = get_user_model().objects.create_user("bob", password="bob-password")
    services.account_create(user=bob, currency="CNY")
    browser = Client()
    browser.force_login(bob)
    return browser


def test_over_the_rate_is_429_with_the_reason_and_nothing_created(
    browser, bob_browser, payments_api, settings, monkeypatch
):
    """Past ACCOUNTS_RECHARGE_USER_RATE starts in the window, the user gets the home page
    with 429 and the reason; no Recharge is written and payments is not called. Another
    user starts one at that same moment."""
    monkeypatch.setattr("core.throttling.time.time", lambda: NOW)
    settings.ACCOUNTS_RECHARGE_USER_RATE = "3/min"
    for _ in range(3):
        assert browser.post(RECHARGE, {"amount": "10"}).status_code == 302
    before, calls = db_state(), len(payments_api.calls)

    response = browser.post(RECHARGE, {"amount": "10"})

    assert response.status_code == 429
    assert "started too many recharges in a short time" in response.content.decode()
    assert "try again in 30 seconds" in response.content.decode()
    assert db_state() == before
    assert len(payments_api.calls) == calls == 3
    assert bob_browser.post(RECHARGE, {"amount": "10"}).status_code == 302
    assert Recharge.objects.filter(account__user__username="bob").count() == 1


def test_pending_cap_refuses_with_409_until_one_is_no_longer_pending(
    browser, payments_api, recharge_factory, settings
):
    """With ACCOUNTS_RECHARGE_PENDING_MAX recharges pending, the next one is refused (409,
    the reason on the home page, nothing written, payments not called); once one of them
    is paid, a new one is started."""
    settings.ACCOUNTS_RECHARGE_PENDING_MAX = 2
    first, _ = recharge_factory(), recharge_factory()
    recharge_factory(status=Recharge.Status.FAILED)  # closed ones do not count
    before = db_state()

    refused = browser.post(RECHARGE, {"amount": "10"})

    assert refused.status_code == 409
    assert "You already have 2 recharges waiting for payment" in refused.content.decode()
    assert db_state() == before
    assert len(payments_api.calls) == 0

    Recharge.objects.filter(pk=first.pk).update(status=Recharge.Status.SUCCEEDED)
    allowed = browser.post(RECHARGE, {"amount": "10"})

    assert allowed.status_code == 302
    assert Recharge.objects.filter(status=Recharge.Status.PENDING).count() == 2
    assert len(payments_api.calls) == 1


@pytest.mark.django_db(transaction=True)
def test_simultaneous_starts_do_not_pass_the_pending_cap(account, payments_api, settings):
    """Eight starts by one user at the same moment, with a cap of 3: exactly 3 recharges
    (the account row is locked while counting), the rest refused before payments is
    called."""
    settings.ACCOUNTS_RECHARGE_PENDING_MAX = 3
    client = PaymentsClient(base_url=API + "/", api_key="sk_test_key", timeout=5)

    def start():
        try:
            return services.recharge_start(account=account, amount=1000, client=client).tx_no[:3]
        except services.RechargePendingLimit:
            return "refused"

    results = run_concurrently(start, threads=8)

    assert sorted(results) == ["TX-"] * 3 + ["refused"] * 5
    assert Recharge.objects.count() == len(payments_api.calls) == 3


def test_cache_outage_lets_the_start_through(account, payments_api, settings, caplog):
    """The rate is counted in the cache; with the cache unreachable a start is let through
    (and a warning logged) rather than every user being refused."""
    settings.ACCOUNTS_RECHARGE_USER_RATE = "1/min"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        }
    }
    client = PaymentsClient(base_url=API + "/", api_key="sk_test_key", timeout=5)

    with caplog.at_level(logging.WARNING, logger="core.throttling"):
        for _ in range(2):
            services.recharge_start(account=account, amount=1000, client=client)

    assert Recharge.objects.count() == len(payments_api.calls) == 2
    assert "throttle recharge_start not applied, cache unavailable" in caplog.text


def test_recharges_payments_never_answered_count_only_while_their_call_may_run(
    browser, payments_api, recharge_factory, settings
):
    """A recharge without a tx_no counts while its create call may still be in flight
    (ACCOUNTS_API_TIMEOUT), so simultaneous starts cannot pass the cap; once that call is
    surely over (it failed: payments unreachable) it no longer counts, so after a short
    outage the user can start one at once, not after the order TTL."""
    settings.ACCOUNTS_RECHARGE_PENDING_MAX = 2
    recharge_factory(), recharge_factory(tx_no=None)

    assert browser.post(RECHARGE, {"amount": "10"}).status_code == 409

    long_ago = timezone.now() - timedelta(seconds=settings.ACCOUNTS_API_TIMEOUT + 1)
    Recharge.objects.filter(tx_no=None).update(created_at=long_ago)
    allowed = browser.post(RECHARGE, {"amount": "10"})

    assert allowed.status_code == 302
    assert len(payments_api.calls) == 1
