"""Plain helpers shared by several test modules (fixtures live in ``tests/conftest.py``)."""

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from django.db import connection

from notifications.envelope import envelope
from payments.contract import EVENT_TYPES, recharge_result

# The Standard Webhooks id the notification tests sign their bodies with.
WEBHOOK_ID = "msg_0123456789abcdef0123456789abcdef"
SENT_AT = datetime(2025, 1, 1, 12, tzinfo=UTC)


def order_request(**overrides) -> dict:
    """A valid recharge order as a merchant asks for it: the JSON body of
    ``POST /api/payments/recharges/`` and, with ``merchant=``, the keyword arguments of
    ``payments.services.recharge_order_create``; ``overrides`` replace or add fields."""
    return {
        "out_trade_no": "SHOP-0001",
        "account_no": "AC000000000001",
        "amount": 1234,
        "currency": "CNY",
        "notify_url": "https://merchant.example/notify",
        "return_url": "https://merchant.example/return",
        **overrides,
    }


def recharge_fields(recharge) -> dict:
    """The fields by which both sides name ``recharge`` (an ``accounts`` ``Recharge``) in
    payments' answers and notifications: tx_no, out_trade_no, account_no, amount, currency."""
    return {
        "tx_no": recharge.tx_no,
        "out_trade_no": recharge.out_trade_no,
        "account_no": recharge.account.account_no,
        "amount": recharge.amount,
        "currency": recharge.currency,
    }


def notification_payload(recharge, *, webhook_id=WEBHOOK_ID, status=100, **data) -> dict:
    """The notification envelope payments sends about ``recharge`` (docs/notifications.md):
    succeeded for ``status`` 100, failed otherwise; ``data`` replaces or adds fields of its
    ``data`` object."""
    paid_at = SENT_AT if status == 100 else None
    result = {**recharge_fields(recharge), "status": status, "paid_at": paid_at}
    return envelope(
        webhook_id=webhook_id,
        event_type=EVENT_TYPES[100 if status == 100 else 200],
        created_at=SENT_AT,
        data={**recharge_result(SimpleNamespace(**result)), **data},
    )


def run_concurrently(action: Callable[[], Any], *, threads: int, timeout: float = 120) -> list:
    """Call ``action()`` from ``threads`` threads released together by a barrier, each
    closing its own database connection when done; returns what the calls returned, in the
    order they finished. A call that raised is recorded as ``(exception class name,
    message)`` instead, so the caller's assertion on the results shows it; a thread still
    running after ``timeout`` seconds is missing from the list."""
    barrier = threading.Barrier(threads)
    results = []

    def call():
        try:
            barrier.wait(timeout=30)
            results.append(action())
        except Exception as exc:  # recorded, so the caller's assertion shows it
            results.append((type(exc).__name__, str(exc)))
        finally:
            connection.close()

    workers = [threading.Thread(target=call) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=timeout)
    return results


def shop_notifications(merchant, count: int) -> list:
    """``count`` notifications of ``merchant`` to https://shop.example/notify (one endpoint),
    subjects TX0, TX1, …, written through the service (its on-commit wake-up included)."""
    from notifications.services import notification_create

    return [
        notification_create(
            sender_key=merchant.app_id,
            subject=f"TX{number}",
            event_type="recharge.succeeded",
            target_url="https://shop.example/notify",
            data={},
        )
        for number in range(count)
    ]


def staff_user(username: str, *codenames: str):
    """A staff user (password ``pw``) holding only the permissions named by ``codenames``
    (e.g. ``view_rechargeorder``): what a support clerk with a narrow role sees."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    # One get a codename: a misspelt one fails here rather than granting less unnoticed.
    user.user_permissions.add(*(Permission.objects.get(codename=name) for name in codenames))
    return user


def headers_as_sent(notification) -> dict[str, str]:
    """The request headers of a delivery of ``notification`` as an attempt records them
    (User-Agent, Content-Type and the three Standard Webhooks headers; the signature a
    placeholder)."""
    return {
        "User-Agent": "recharge-notify",
        "Content-Type": "application/json",
        "webhook-id": notification.webhook_id,
        "webhook-timestamp": "1764252202",
        "webhook-signature": "v1,c2lnbmF0dXJl",
    }


def failed_attempt(notification, *, number: int = 1, **fields):
    """Record attempt ``number`` of ``notification`` as failed, started now unless
    ``fields`` say otherwise; ``fields`` set the rest of the ``DeliveryAttempt``
    (duration_ms, status_code, error, response_excerpt, request_headers, …)."""
    from django.utils import timezone

    from notifications.models import DeliveryAttempt

    return DeliveryAttempt.objects.create(
        notification=notification,
        number=number,
        succeeded=False,
        **{"started_at": timezone.now(), **fields},
    )
