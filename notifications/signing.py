"""Bytes on the wire: the Standard Webhooks headers for a body (pure; no I/O).

Spec: https://www.standardwebhooks.com/ ("Signature scheme"): the signed content is
``{webhook-id}.{webhook-timestamp}.{body}``, HMAC-SHA256 under the base64 key after
``whsec_``; ``webhook-signature`` carries space-separated ``v1,<base64>`` entries, one per
active secret, which is how a secret is rotated without a gap.
"""

from datetime import datetime

from standardwebhooks.webhooks import Webhook


def signed_headers(
    *, webhook_id: str, body: str, secrets: list[str], timestamp: datetime
) -> dict[str, str]:
    """Headers for POSTing ``body`` signed under every secret in ``secrets``.

    ``timestamp`` must be timezone-aware; it is sent as integer seconds since the epoch.
    Raises ``ValueError`` when ``secrets`` is empty.
    """
    if not secrets:
        raise ValueError("no webhook secret to sign with")
    signatures = " ".join(Webhook(s).sign(webhook_id, timestamp, body) for s in secrets)
    return {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
    }
