"""Shared fixtures: merchants, users with accounts, and signed notification bodies."""

import itertools
import uuid
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import Recharge
from accounts.services import account_create
from notifications.signing import signed_headers
from payments.services import merchant_create, recharge_order_create
from tests.helpers import order_request

WEBHOOK_SECRET = "whsec_dGVzdC13ZWJob29rLXNlY3JldC1mb3ItdGhlLXN1aXRl"
# The hosts the test merchants' notify_url and return_url may name (payments refuses others).
TEST_ALLOWED_HOSTS = ["merchant.example", "127.0.0.1", "localhost", "testserver"]


@pytest.fixture
def merchant_credentials(db):
    """A merchant whose webhook secret is also the accounts side's (as in development)."""
    return merchant_create(
        name="Test wallet", webhook_secret=WEBHOOK_SECRET, allowed_hosts=TEST_ALLOWED_HOSTS
    )


@pytest.fixture
def merchant(merchant_credentials):
    return merchant_credentials.merchant


@pytest.fixture
def merchant_api(merchant_credentials):
    """An API client authenticated as ``merchant``."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {merchant_credentials.api_key}")
    return client


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", password="alice-password")


@pytest.fixture
def account(user):
    return account_create(user=user, currency="CNY")


@pytest.fixture(autouse=True)
def _accounts_trust_test_secret(settings):
    settings.ACCOUNTS_WEBHOOK_SECRETS = [WEBHOOK_SECRET]


@pytest.fixture(autouse=True)
def _dashboard_uncached(settings):
    # The cache (Redis) outlives a test's database: figures cached by one test would show in
    # the next. tests/test_dashboard.py turns the cache on where it tests it.
    settings.DASHBOARD_CACHE_SECONDS = 0


def sign(body: str, *, webhook_id: str, secret: str = WEBHOOK_SECRET, timestamp=None) -> dict:
    """Standard Webhooks headers for ``body`` as the notifier would send them."""
    return signed_headers(
        webhook_id=webhook_id,
        body=body,
        secrets=[secret],
        timestamp=timestamp or datetime.now(UTC),
    )


# --- Unit and API test helpers (appended) ------------------------------------------------------


@pytest.fixture
def deliver_apply_async():
    """``notifications.tasks.deliver.apply_async`` replaced by a mock, so on-commit callbacks
    can be executed without a message ever reaching the broker."""
    with mock.patch("notifications.tasks.deliver.apply_async") as apply_async:
        yield apply_async


@pytest.fixture
def other_merchant(db):
    """A second merchant, for isolation checks."""
    return merchant_create(name="Other shop", allowed_hosts=TEST_ALLOWED_HOSTS).merchant


@pytest.fixture
def order_factory(merchant):
    """``order_factory(**overrides)`` → a pending ``RechargeOrder`` of ``merchant`` (or of the
    ``merchant=`` given), created through the service."""
    counter = itertools.count(1)

    def make(**overrides):
        defaults = {"merchant": merchant, "out_trade_no": f"ORD-{next(counter)}"}
        return recharge_order_create(**order_request(**{**defaults, **overrides}))[0]

    return make


@pytest.fixture
def recharge_factory(account):
    """``recharge_factory(**overrides)`` → a pending ``Recharge`` of ``account`` that payments
    already answered with a tx_no (pass ``tx_no=None`` for one whose create never returned)."""
    counter = itertools.count(1)

    def make(**overrides):
        number = next(counter)
        fields = {
            "account": account,
            "out_trade_no": f"R-TEST-{number}",
            "tx_no": f"TX-TEST-{number}",
            "amount": 1000,
            "currency": account.currency,
            **overrides,
        }
        return Recharge.objects.create(**fields)

    return make


@pytest.fixture
def recharge(recharge_factory):
    """A pending ``Recharge`` of 1000 (minor units) of ``account``, already given a tx_no by
    payments: what the notification tests deliver notifications about."""
    return recharge_factory(amount=1000)


@pytest.fixture
def fast_password_hashing(settings):
    """MD5 instead of PBKDF2 for users made in-process by unit tests (not autouse: a user
    created for a separate server process must keep a hash that server accepts)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def fresh_throttles(settings):
    """Throttle counters of this test only: a key prefix no other test (or run) uses."""
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
    }
    yield
    cache.close()
