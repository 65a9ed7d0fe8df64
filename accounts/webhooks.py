"""Verifying an incoming notification (Standard Webhooks, via the ``standardwebhooks`` package)."""

import binascii

from django.conf import settings
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class InvalidNotification(Exception):
    """The request is not a notification we can trust or read; the message says why."""


def notification_verify(*, body: bytes, headers: dict[str, str]) -> dict:
    """Check the signature and timestamp (±5 minutes, the library's tolerance) against any of
    ``ACCOUNTS_WEBHOOK_SECRETS`` and return the parsed JSON payload.

    Raises ``InvalidNotification`` for a missing, malformed, stale or wrong signature, or a
    body that is not a UTF-8 JSON object.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidNotification("body is not UTF-8") from exc
    reason = "no webhook secret configured"
    for secret in settings.ACCOUNTS_WEBHOOK_SECRETS:
        try:
            payload = Webhook(secret).verify(text, headers)
        except WebhookVerificationError as exc:
            reason = str(exc)
        # The library raises these for malformed signature headers (no comma, bad base64)
        # and non-JSON bodies: still the sender's fault, so still a 4xx.
        except (ValueError, binascii.Error) as exc:
            reason = f"malformed signature or body: {type(exc).__name__}"
        else:
            if not isinstance(payload, dict):
                raise InvalidNotification("payload must be a JSON object")
            return payload
    raise InvalidNotification(f"signature verification failed: {reason}")
