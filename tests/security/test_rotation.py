"""Credentials: webhook secret rotation with an overlap, API keys stored hashed and revocable,
and the management commands that issue them."""

import json
import re
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from notifications import services as notification_services
from notifications.delivery import deliveries_run
from notifications.signing import signed_headers
from payments import selectors, services
from payments.models import Merchant
from tests.conftest import WEBHOOK_SECRET
from tests.receiver import Receiver

NOTIFY_URL = reverse("accounts:notify")


@pytest.fixture
def deliver_headers(deliver_apply_async):
    """``deliver_headers(merchant)`` → the body and headers of a notification of ``merchant``
    as the delivery worker actually POSTs it now (to a real loopback receiver)."""

    def deliver(merchant) -> tuple[str, dict]:
        with Receiver() as receiver:
            notification = notification_services.notification_create(
                sender_key=merchant.app_id,
                subject="TX-ROT",
                event_type="recharge.succeeded",
                target_url=receiver.url,
                data={"tx_no": "TX-ROT"},
            )
            deliveries_run(hints=[notification.pk])
        [request] = receiver.received
        return request.body.decode(), request.headers

    return deliver


def verifies(secret: str, body: str, headers: dict) -> bool:
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except Exception:
        return False
    return True


def test_roll_signs_with_new_and_old_secret_during_the_overlap(merchant, deliver_headers):
    """After a roll, every notification carries two signatures (new and old), so a receiver
    still configured with the old secret and one already switched both verify it."""
    new_secret = services.merchant_webhook_secret_roll(
        merchant=merchant, overlap=timedelta(hours=24)
    )

    body, headers = deliver_headers(merchant)

    assert selectors.merchant_webhook_secrets(merchant.app_id) == [new_secret, WEBHOOK_SECRET]
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verifies(WEBHOOK_SECRET, body, headers)
    assert verifies(new_secret, body, headers)


def test_after_the_overlap_only_the_new_secret_signs(merchant, deliver_headers):
    """Once previous_secret_expires_at has passed, only the new secret signs: the old one no
    longer verifies anything."""
    new_secret = services.merchant_webhook_secret_roll(
        merchant=merchant, overlap=timedelta(hours=24)
    )
    Merchant.objects.filter(pk=merchant.pk).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )

    body, headers = deliver_headers(merchant)

    assert selectors.merchant_webhook_secrets(merchant.app_id) == [new_secret]
    assert not verifies(WEBHOOK_SECRET, body, headers)
    assert verifies(new_secret, body, headers)


def test_zero_overlap_drops_the_old_secret_at_once(merchant):
    """An immediate roll (a leaked secret): only the new secret signs from now on."""
    new_secret = services.merchant_webhook_secret_roll(merchant=merchant, overlap=timedelta(0))

    merchant.refresh_from_db()
    assert (merchant.previous_webhook_secret, merchant.previous_secret_expires_at) == ("", None)
    assert selectors.merchant_webhook_secrets(merchant.app_id) == [new_secret]


def test_default_overlap_is_the_setting(merchant, settings):
    """Without an explicit overlap the old secret signs for PAYMENTS_WEBHOOK_SECRET_OVERLAP."""
    settings.PAYMENTS_WEBHOOK_SECRET_OVERLAP = 3600
    before = timezone.now()

    services.merchant_webhook_secret_roll(merchant=merchant)

    merchant.refresh_from_db()
    expires = merchant.previous_secret_expires_at
    assert before + timedelta(seconds=3599) <= expires <= timezone.now() + timedelta(seconds=3601)


def test_rolling_twice_keeps_only_the_secret_being_replaced(merchant):
    """A second roll during an overlap: the newest and the one it replaces sign; the first,
    oldest secret is gone."""
    second = services.merchant_webhook_secret_roll(merchant=merchant)
    third = services.merchant_webhook_secret_roll(merchant=merchant)

    assert selectors.merchant_webhook_secrets(merchant.app_id) == [third, second]


def test_receiver_switches_at_its_own_pace(client, merchant, recharge_factory, settings):
    """The end-to-end rotation: payments rolls; accounts, still on the old secret, accepts;
    accounts then trusts only the new secret, and still accepts."""
    new_secret = services.merchant_webhook_secret_roll(merchant=merchant)
    recharge = recharge_factory(amount=500)
    accepted = []
    for webhook_id, secrets in (("msg_a", [WEBHOOK_SECRET]), ("msg_b", [new_secret])):
        settings.ACCOUNTS_WEBHOOK_SECRETS = secrets
        body = json.dumps(
            {
                "id": webhook_id,
                "type": "recharge.succeeded",
                "created_at": "2025-01-01T00:00:00+00:00",
                "data": {
                    "tx_no": recharge.tx_no,
                    "out_trade_no": recharge.out_trade_no,
                    "account_no": recharge.account.account_no,
                    "amount": 500,
                    "currency": recharge.currency,
                    "status": 100,
                    "paid_at": "2025-01-01T00:00:00+00:00",
                },
            }
        )
        headers = signed_headers(
            webhook_id=webhook_id,
            body=body,
            secrets=selectors.merchant_webhook_secrets(merchant.app_id),
            timestamp=datetime.now(UTC),
        )
        headers.pop("Content-Type")
        response = client.post(
            NOTIFY_URL, data=body, content_type="application/json", headers=headers
        )
        accepted.append(response.status_code)

    assert accepted == [200, 200]


def test_roll_webhook_secret_command_prints_the_new_secret_once(merchant):
    """``roll_webhook_secret APP_ID`` stores a new secret, prints it, and reports until when
    the old one still signs."""
    out = StringIO()

    call_command("roll_webhook_secret", merchant.app_id, stdout=out)

    merchant.refresh_from_db()
    printed = re.search(r"webhook_secret: (whsec_\S+)", out.getvalue()).group(1)
    assert printed == merchant.webhook_secret != WEBHOOK_SECRET
    assert merchant.previous_webhook_secret == WEBHOOK_SECRET
    assert "also signs every notification until" in out.getvalue()


def test_roll_webhook_secret_command_refuses_unknown_merchant_and_negative_overlap(merchant):
    """An unknown app_id or a negative overlap is a CommandError; nothing changes."""
    with pytest.raises(CommandError, match="no merchant with app_id 'app_nope'"):
        call_command("roll_webhook_secret", "app_nope", stdout=StringIO())
    with pytest.raises(CommandError, match="--overlap must be 0 or more"):
        call_command("roll_webhook_secret", merchant.app_id, overlap=-1, stdout=StringIO())
    merchant.refresh_from_db()
    assert merchant.webhook_secret == WEBHOOK_SECRET


# --- API keys -------------------------------------------------------------------------------


def test_api_key_is_stored_only_as_a_hash(merchant_credentials):
    """The database holds the key's SHA-256 and a 16-character lookup prefix, never the key."""
    merchant = merchant_credentials.merchant
    stored = json.dumps(list(Merchant.objects.filter(pk=merchant.pk).values()), default=str)

    assert merchant_credentials.api_key not in stored
    assert merchant.api_key_hash == selectors.api_key_hash(merchant_credentials.api_key)


def test_revoke_api_key_command_issues_a_new_key(merchant_credentials):
    """``revoke_api_key APP_ID``: the old key stops working at once, the printed new one works."""
    merchant = merchant_credentials.merchant
    out = StringIO()

    call_command("revoke_api_key", merchant.app_id, stdout=out)

    new_key = re.search(r"api_key: +(sk_\S+)", out.getvalue()).group(1)
    assert selectors.merchant_for_api_key(api_key=merchant_credentials.api_key) is None
    assert selectors.merchant_for_api_key(api_key=new_key) == merchant


def test_revoke_without_new_key_leaves_no_working_key(merchant_credentials):
    """``--no-new-key``: no key authenticates the merchant any more, and none is printed."""
    merchant = merchant_credentials.merchant
    out = StringIO()

    call_command("revoke_api_key", merchant.app_id, no_new_key=True, stdout=out)

    assert "api_key:" not in out.getvalue()
    assert selectors.merchant_for_api_key(api_key=merchant_credentials.api_key) is None
    merchant.refresh_from_db()
    assert merchant.api_key_hash == ""
    assert selectors.merchant_for_api_key(api_key=merchant.api_key_prefix) is None


# --- onboarding: allowed hosts --------------------------------------------------------------


def test_create_merchant_takes_repeatable_allowed_hosts(db):
    """``--allowed-host`` may be repeated; hosts are normalised and stored."""
    out = StringIO()

    call_command(
        "create_merchant",
        "Shop",
        allowed_hosts=["Shop.Example.", ".cdn.example", "[::1]"],
        stdout=out,
    )

    merchant = Merchant.objects.get(name="Shop")
    assert merchant.allowed_hosts == ["shop.example", ".cdn.example", "[::1]"]
    assert "allowed hosts:  shop.example, .cdn.example, [::1]" in out.getvalue()


@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        (["*"], "not a host name: '*'"),
        (["evil.example/path"], "not a host name"),
        (["user@host"], "not a host name"),
    ],
)
def test_create_merchant_refuses_malformed_hosts(db, hosts, message):
    """A wildcard, a path or userinfo is not a host: CommandError, no merchant."""
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("create_merchant", "Shop", allowed_hosts=hosts, stdout=StringIO())
    assert not Merchant.objects.exists()


def test_without_default_hosts_onboarding_requires_them(db, settings):
    """Production has no PAYMENTS_DEFAULT_ALLOWED_HOSTS: create_merchant without
    --allowed-host is refused instead of making a merchant that can use any host."""
    settings.PAYMENTS_DEFAULT_ALLOWED_HOSTS = []

    with pytest.raises(CommandError, match="at least one allowed host is required"):
        call_command("create_merchant", "Shop", stdout=StringIO())
    assert not Merchant.objects.exists()


def test_roll_webhook_secret_command_with_zero_overlap_says_when_the_old_one_stops(
    merchant, settings
):
    """A zero overlap: the command says the old secret stops signing once every worker has
    asked again, NOTIFY_SECRET_CACHE_SECONDS at most, not that it stopped already."""
    settings.NOTIFY_SECRET_CACHE_SECONDS = 10
    out = StringIO()

    call_command("roll_webhook_secret", merchant.app_id, overlap=0, stdout=out)

    assert "The old secret stops signing within NOTIFY_SECRET_CACHE_SECONDS (10 s)" in (
        out.getvalue()
    )
