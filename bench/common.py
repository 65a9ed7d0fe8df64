"""What every scenario shares: the recharge payload and its notification body."""

import json
from datetime import UTC, datetime

from .stack import WEBHOOK_SECRET

SECRET = WEBHOOK_SECRET
EVENT_TYPE = "recharge.succeeded"


def recharge_data(tag: str, number: int, *, account_no: str = "AC000000000001") -> dict:
    """A recharge notification's ``data`` (design.md "HTTP contract"), distinct per number."""
    return {
        "tx_no": f"{tag}TX{number:09d}",
        "out_trade_no": f"{tag}R{number:09d}",
        "account_no": account_no,
        "amount": 1000 + number % 9000,
        "currency": "CNY",
        "status": 100,
        "paid_at": datetime.now(UTC).isoformat(),
    }


def notification_body(webhook_id: str, data: dict) -> str:
    """The frozen body ``notification_create`` would write for ``data``, byte for byte."""
    envelope = {
        "id": webhook_id,
        "type": EVENT_TYPE,
        "created_at": datetime.now(UTC).isoformat(),
        "data": data,
    }
    return json.dumps(envelope, separators=(",", ":"))
