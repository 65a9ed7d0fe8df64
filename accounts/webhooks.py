"""Verifying an incoming notification (Standard Webhooks, via the ``standardwebhooks`` package).

The headers are checked for shape before the library sees them: the library would raise
``ValueError``/``binascii.Error`` on some malformed signatures, silently skip bad base64
characters on others, and try every entry of an arbitrarily long signature list. Here every
malformed header is an ``InvalidNotification`` with a reason, i.e. a 400.
"""

import base64
import binascii
import json
import re
import time
from datetime import timedelta

from django.conf import settings
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

# The spec's (and the library's) replay window: a timestamp further than this from now is
# refused, so a captured request can be replayed only briefly, and a replayed webhook-id
# then finds its receipt (see services.notification_receive).
TOLERANCE = timedelta(minutes=5)
MAX_SIGNATURES = 8  # one per secret being rotated is plenty; more is an attack on CPU time
MAX_SIGNATURE_HEADER = 1024
_WEBHOOK_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_VERSION = re.compile(r"^v[0-9]{1,3}$")
_SIGNATURE_BYTES = 32  # HMAC-SHA256


class InvalidNotification(Exception):
    """The request is not a notification we can trust or read; the message says why."""


def notification_verify(*, body: bytes, headers: dict[str, str]) -> dict:
    """Check the headers, the timestamp (±5 minutes) and the signature against any of
    ``ACCOUNTS_WEBHOOK_SECRETS``, and return the parsed JSON payload.

    Raises ``InvalidNotification`` for a missing or malformed header, a stale or future
    timestamp, no valid signature under any configured secret, or a body that is not a
    UTF-8 JSON object.
    """
    headers = {k.lower(): v for k, v in headers.items()}
    _check_headers(headers)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidNotification("body is not UTF-8") from exc
    reason = "no webhook secret configured"
    for secret in settings.ACCOUNTS_WEBHOOK_SECRETS:
        try:
            Webhook(secret).verify(text, headers, json_parse=False)
        except WebhookVerificationError as exc:
            reason = str(exc)
        except (ValueError, binascii.Error) as exc:  # shape checked above; belt and braces
            reason = f"malformed signature: {type(exc).__name__}"
        else:
            return _parse(text)
    raise InvalidNotification(f"signature verification failed: {reason}")


def _check_headers(headers: dict[str, str]) -> None:
    missing = [
        name
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
        if not headers.get(name)
    ]
    if missing:
        raise InvalidNotification(f"missing header(s): {', '.join(missing)}")
    if not _WEBHOOK_ID.match(headers["webhook-id"]):
        raise InvalidNotification("malformed webhook-id: 1-64 letters, digits or _.:-")
    timestamp = headers["webhook-timestamp"]
    if not _TIMESTAMP.match(timestamp):
        raise InvalidNotification("malformed webhook-timestamp: integer seconds since the epoch")
    skew = int(timestamp) - time.time()
    if abs(skew) > TOLERANCE.total_seconds():
        direction = "old" if skew < 0 else "far in the future"
        raise InvalidNotification(
            f"webhook-timestamp too {direction}: tolerance is {int(TOLERANCE.total_seconds())} s"
        )
    _check_signature_header(headers["webhook-signature"])


def _check_signature_header(value: str) -> None:
    """``v1,<base64 of 32 bytes>`` entries separated by single spaces, at most a few."""
    if len(value) > MAX_SIGNATURE_HEADER:
        raise InvalidNotification(f"webhook-signature longer than {MAX_SIGNATURE_HEADER} chars")
    entries = value.split(" ")
    if len(entries) > MAX_SIGNATURES:
        raise InvalidNotification(f"more than {MAX_SIGNATURES} signatures in webhook-signature")
    has_v1 = False
    for entry in entries:
        version, comma, signature = entry.partition(",")
        if not comma or "," in signature:
            raise InvalidNotification("malformed webhook-signature: expected 'v1,<base64>'")
        if not _VERSION.match(version):
            raise InvalidNotification(f"malformed webhook-signature version {version[:8]!r}")
        if version != "v1":
            continue  # a future scheme we do not know: ignored, as the spec says
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidNotification("malformed webhook-signature: bad base64") from exc
        if len(raw) != _SIGNATURE_BYTES:
            raise InvalidNotification("malformed webhook-signature: a v1 signature is 32 bytes")
        has_v1 = True
    if not has_v1:
        raise InvalidNotification("no v1 signature in webhook-signature")


def _parse(text: str) -> dict:
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidNotification("body is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise InvalidNotification("payload must be a JSON object")
    return payload
