"""Shared fixtures: merchants, users with accounts, and signed notification bodies."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from accounts.services import account_create
from notifications.signing import signed_headers
from payments.services import merchant_create

WEBHOOK_SECRET = "whsec_dGVzdC13ZWJob29rLXNlY3JldC1mb3ItdGhlLXN1aXRl"


@pytest.fixture
def merchant_credentials(db):
    """A merchant whose webhook secret is also the accounts side's (as in development)."""
    return merchant_create(name="Test wallet", webhook_secret=WEBHOOK_SECRET)


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


def sign(body: str, *, webhook_id: str, secret: str = WEBHOOK_SECRET, timestamp=None) -> dict:
    """Standard Webhooks headers for ``body`` as the notifier would send them."""
    return signed_headers(
        webhook_id=webhook_id,
        body=body,
        secrets=[secret],
        timestamp=timestamp or datetime.now(UTC),
    )
