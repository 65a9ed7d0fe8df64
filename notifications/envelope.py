"""The envelope every notification travels in, defined once (docs/notifications.md):
``{"id", "type", "created_at", "data"}`` as compact JSON, ``id`` equal to the Standard
Webhooks ``webhook-id`` header.

``notification_create`` freezes each body with ``envelope_body``; a receiver validates with a
subclass of ``EnvelopeSerializer`` that names its event types and its ``data`` (payments'
recharge notification: ``payments/contract.py``).
"""

import json
from datetime import datetime

from rest_framework import serializers

# The Standard Webhooks spec leaves the id's shape open; ours ("msg_" + 32 hex) fits this,
# and receivers refuse anything else before touching a database.
WEBHOOK_ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,64}$"


def envelope(*, webhook_id: str, event_type: str, created_at: datetime, data: dict) -> dict:
    """The envelope as a dict; ``created_at`` timezone-aware, ``data`` JSON-serialisable."""
    return {
        "id": webhook_id,
        "type": event_type,
        # As DRF writes every other time on the wire (ISO 8601, "Z" for UTC).
        "created_at": serializers.DateTimeField().to_representation(created_at),
        "data": data,
    }


def envelope_body(*, webhook_id: str, event_type: str, created_at: datetime, data: dict) -> str:
    """The envelope as the exact text sent on every attempt: compact JSON, keys in order."""
    fields = envelope(
        webhook_id=webhook_id, event_type=event_type, created_at=created_at, data=data
    )
    return json.dumps(fields, separators=(",", ":"))


class EnvelopeSerializer(serializers.Serializer):
    """Validates a received envelope. Subclasses narrow ``type`` and give ``data`` its shape."""

    id = serializers.RegexField(
        WEBHOOK_ID_PATTERN,
        help_text="The notification id; equals the webhook-id header, the same on every retry.",
        error_messages={"invalid": "Use 1-64 letters, digits or _.:-"},
    )
    type = serializers.CharField(max_length=64, help_text="The event type.")
    created_at = serializers.DateTimeField(help_text="When the event happened (ISO 8601).")
    data = serializers.DictField(help_text="The event's own fields.")
