"""Standard Webhooks headers (notifications/signing.py), checked the way a receiver checks them."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notifications.signing import signed_headers

SECRET_A = "whsec_c2VjcmV0LWEtZm9yLXNpZ25pbmctdGVzdHMtMzJieXRlcw=="
SECRET_B = "whsec_c2VjcmV0LWItZm9yLXNpZ25pbmctdGVzdHMtMzJieXRlcw=="
BODY = json.dumps({"id": "msg_1", "type": "recharge.succeeded", "data": {"amount": 1234}})


def headers_for(body=BODY, secrets=(SECRET_A,), timestamp=None, webhook_id="msg_1"):
    return signed_headers(
        webhook_id=webhook_id,
        body=body,
        secrets=list(secrets),
        timestamp=timestamp or datetime.now(UTC),
    )


def test_headers_verify_with_the_receivers_library():
    """A receiver using standardwebhooks.Webhook(secret).verify accepts and parses the body."""
    headers = headers_for()

    assert Webhook(SECRET_A).verify(BODY, headers) == json.loads(BODY)


def test_headers_carry_id_integer_timestamp_and_json_content_type():
    """webhook-id is the given id, webhook-timestamp integer epoch seconds, one v1 signature."""
    timestamp = datetime(2025, 3, 1, 12, 0, 30, 999_000, tzinfo=UTC)

    headers = headers_for(timestamp=timestamp, webhook_id="msg_abc")

    assert headers["webhook-id"] == "msg_abc"
    assert headers["webhook-timestamp"] == "1740830430"
    assert headers["Content-Type"] == "application/json"
    assert headers["webhook-signature"].startswith("v1,")
    assert " " not in headers["webhook-signature"]


def test_signing_is_pure():
    """The same id, body, secrets and timestamp give the same headers (no hidden state)."""
    timestamp = datetime.now(UTC)

    assert headers_for(timestamp=timestamp) == headers_for(timestamp=timestamp)


def test_two_secrets_give_two_signatures_each_verifying_alone():
    """During a rotation both secrets sign; each entry verifies under its own secret only."""
    headers = headers_for(secrets=(SECRET_A, SECRET_B))
    first, second = headers["webhook-signature"].split(" ")

    assert first != second
    for secret, own, other in ((SECRET_A, first, second), (SECRET_B, second, first)):
        assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
        assert Webhook(secret).verify(BODY, {**headers, "webhook-signature": own})
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(BODY, {**headers, "webhook-signature": other})


def test_tampered_body_fails_verification():
    """One changed byte of the body breaks the signature."""
    headers = headers_for()

    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(SECRET_A).verify(BODY.replace("1234", "9234"), headers)


def test_tampered_id_or_timestamp_fails_verification():
    """The id and timestamp are signed too: replaying the body under another id fails."""
    headers = headers_for()
    earlier = str(int(headers["webhook-timestamp"]) - 1)

    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET_A).verify(BODY, {**headers, "webhook-id": "msg_2"})
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET_A).verify(BODY, {**headers, "webhook-timestamp": earlier})


def test_another_secret_fails_verification():
    """A receiver holding a different secret rejects the notification."""
    headers = headers_for(secrets=(SECRET_A,))

    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(SECRET_B).verify(BODY, headers)


def test_old_timestamp_is_refused_by_the_receiver():
    """Headers signed 10 minutes ago are outside the library's 5-minute tolerance."""
    headers = headers_for(timestamp=datetime.now(UTC) - timedelta(minutes=10))

    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(SECRET_A).verify(BODY, headers)


def test_no_secret_raises_value_error():
    """Signing with no secret is a configuration error, never an unsigned request."""
    with pytest.raises(ValueError, match="no webhook secret"):
        headers_for(secrets=())
