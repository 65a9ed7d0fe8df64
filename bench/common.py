"""What every scenario shares: the recharge payload and its notification body."""

from datetime import UTC, datetime
from types import SimpleNamespace

from notifications.envelope import envelope_body
from payments.contract import RechargeStatus, recharge_result

from .stack import WEBHOOK_SECRET

SECRET = WEBHOOK_SECRET
EVENT_TYPE = "recharge.succeeded"


def recharge_data(tag: str, number: int, *, account_no: str = "AC000000000001") -> dict:
    """A recharge notification's ``data`` (payments/contract.py), distinct per number."""
    order = SimpleNamespace(
        tx_no=f"{tag}TX{number:09d}",
        out_trade_no=f"{tag}R{number:09d}",
        account_no=account_no,
        amount=1000 + number % 9000,
        currency="CNY",
        status=RechargeStatus.SUCCEEDED,
        paid_at=datetime.now(UTC),
    )
    return recharge_result(order)


def notification_body(webhook_id: str, data: dict) -> str:
    """The frozen body ``notification_create`` would write for ``data``, byte for byte."""
    return envelope_body(
        webhook_id=webhook_id, event_type=EVENT_TYPE, created_at=datetime.now(UTC), data=data
    )
