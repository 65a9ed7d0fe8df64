"""Fixtures of the hostile-input suite: fake DNS, a tripwire on outside connections, and a
snapshot of everything a refused request must leave unchanged."""

import ipaddress
import socket

import pytest

from accounts.models import Account, InboundNotification, LedgerEntry, Recharge
from notifications import netguard
from notifications.models import DeliveryAttempt, Notification
from payments.models import Merchant, RechargeOrder

# Host names the suite resolves, without a real DNS query: a public address (never
# connected to: the tripwire below refuses), and names that resolve into blocked ranges.
FAKE_DNS = {
    "merchant.example": ["93.184.215.14"],
    "shop.example": ["93.184.215.14"],
    "localhost": ["127.0.0.1"],
    "testserver": ["127.0.0.1"],
    "rebind.example": ["10.0.0.1"],
    "metadata.example": ["169.254.169.254"],
    "loopback.example": ["127.0.0.1"],
    "mixed.example": ["93.184.215.14", "192.168.1.10"],
    "v6private.example": ["fd12:3456::1"],
}


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch) -> dict:
    """Every name the guard resolves comes from this test's copy of ``FAKE_DNS`` (returned,
    to be edited by the test); unknown names do not resolve. Literal addresses, in any
    notation the real resolver accepts without DNS (``2130706433``), resolve to themselves."""
    table = {name: list(addresses) for name, addresses in FAKE_DNS.items()}

    def resolve(host: str, port: int) -> list[str]:
        if host in table:
            return list(table[host])
        flags = socket.AI_NUMERICHOST
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=flags)
        return list(dict.fromkeys(info[4][0] for info in infos))

    monkeypatch.setattr(netguard, "resolve", resolve)
    return table


@pytest.fixture(autouse=True)
def no_outside_connections(monkeypatch):
    """Tripwire: any TCP connection to a non-loopback address fails the test at once. The
    hostile URLs of this suite (10.0.0.1, 169.254.169.254, ...) must never be contacted."""
    real_connect = socket.socket.connect
    attempts = []

    def guarded_connect(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0].split("%", 1)[0]
            if not ipaddress.ip_address(host).is_loopback:
                attempts.append(address)
                raise AssertionError(f"test tried to connect to {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    yield attempts
    assert not attempts, f"connections attempted outside loopback: {attempts}"


def db_state() -> dict:
    """Everything a refused request must leave as it was: row counts, statuses, balances,
    delivery counters and merchants' credentials."""
    return {
        "orders": list(
            RechargeOrder.objects.order_by("pk").values_list(
                "pk", "merchant_id", "out_trade_no", "amount", "currency", "status", "notify_url"
            )
        ),
        "notifications": list(
            Notification.objects.order_by("pk").values_list("pk", "state", "attempt_count")
        ),
        "attempts": DeliveryAttempt.objects.count(),
        "ledger": list(LedgerEntry.objects.order_by("pk").values_list("pk", "tx_no", "amount")),
        "balances": list(Account.objects.order_by("pk").values_list("pk", "balance")),
        "recharges": list(Recharge.objects.order_by("pk").values_list("pk", "status", "tx_no")),
        "receipts": list(
            InboundNotification.objects.order_by("pk").values_list(
                "pk", "webhook_id", "deliveries", "outcome", "payload_sha256"
            )
        ),
        "merchants": list(
            Merchant.objects.order_by("pk").values_list(
                "pk", "api_key_hash", "webhook_secret", "allowed_hosts", "is_active"
            )
        ),
    }


def error_text(body) -> str:
    """Every message in an error body (``{"detail": ...}`` or DRF's per-field lists, nested),
    joined into one string to search."""
    if isinstance(body, dict):
        return " | ".join(error_text(value) for value in body.values())
    if isinstance(body, list):
        return " | ".join(error_text(value) for value in body)
    return str(body)
