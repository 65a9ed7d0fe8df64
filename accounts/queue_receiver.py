"""Receiving recharge notifications from the queue (scheme 1: ``ACCOUNTS_NOTIFY_TRANSPORT =
"queue"``), the handler ``manage.py notifications_consume`` calls for each message
(notifications/subscriber.py).

The same checks and the same service as the notify API (accounts/apis.py): the Standard
Webhooks signature and timestamp tolerance (``notification_verify``), the contract
(``RechargeNotificationSerializer``), the payload id against the webhook-id, then
``services.notification_receive``; so receipts, duplicates and mismatches are recorded alike
and counted in the same ``recharge_receipts_total``. No throttle: the queue is ours, and the
subscriber takes messages at its own pace.
"""

import hashlib

from payments.contract import RechargeNotificationSerializer

from . import metrics, services
from .models import InboundNotification
from .webhooks import InvalidNotification, notification_verify

Outcome = InboundNotification.Outcome


def notification_consume(body: bytes, headers: dict) -> tuple[bool, str]:
    """Verify and apply one notification from the queue. Returns ``(ok, reason)``: ok for
    applied or a duplicate (the HTTP API's 200s), not ok with the reason for anything it
    answers with a 4xx (unverified, off contract, id mismatch, reused webhook-id, rejected).
    """
    try:
        payload = notification_verify(body=body, headers=headers)
    except InvalidNotification as exc:
        return _refused("unverified", str(exc))
    serializer = RechargeNotificationSerializer(data=payload)
    if not serializer.is_valid():
        return _refused("off_contract", f"off contract: {serializer.errors}")
    webhook_id = {k.lower(): v for k, v in headers.items()}["webhook-id"]
    if serializer.validated_data["id"] != webhook_id:
        return _refused("id_mismatch", "payload id does not match the webhook-id header")
    try:
        outcome, reason = services.notification_receive(
            webhook_id=webhook_id,
            payload=serializer.validated_data,
            payload_sha256=hashlib.sha256(body).hexdigest(),
        )
    except services.WebhookIdReused as exc:
        return _refused("webhook_id_reused", str(exc))
    metrics.receipt_observe(outcome=outcome)
    return outcome != Outcome.REJECTED, reason or outcome


def _refused(reason: str, detail: str) -> tuple[bool, str]:
    metrics.receipt_observe(outcome="refused", reason=reason)
    return False, detail
