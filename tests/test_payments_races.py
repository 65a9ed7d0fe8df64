"""The cashier's pay against a decline or another pay committed at the same moment: the
conditional update must be re-checked under the row lock (PostgreSQL's READ COMMITTED)."""

import threading

import pytest
from django.db import connection, transaction

from notifications.models import Notification
from payments import services
from payments.models import RechargeOrder

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_broker(deliver_apply_async):
    """Finishing an order writes a notification; its on-commit message must not reach Redis."""


def race(first, second, tx_no: str) -> None:
    """``first`` runs in a transaction held open until ``second`` (another connection) is
    waiting for the order's row lock, then commits; ``second`` then goes on."""
    holding, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                first(tx_no=tx_no)
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    def follow():
        try:
            second(tx_no=tx_no)
        except services.PaymentRefused:
            pass
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    follower = threading.Thread(target=follow)
    follower.start()
    follower.join(1.0)  # blocked on the row lock (SQLite: on the write lock) meanwhile
    release.set()
    holder.join(10)
    follower.join(10)
    assert not holder.is_alive() and not follower.is_alive()


def events(tx_no: str) -> list:
    return list(Notification.objects.filter(subject=tx_no).values_list("event_type", flat=True))


def test_a_pay_waiting_on_a_decline_pays_nothing(order_factory):
    """Declined while the payer clicked Pay: the order stays failed, one notification."""
    order = order_factory()

    race(services.recharge_order_decline, services.recharge_order_pay, order.tx_no)

    assert RechargeOrder.objects.get(pk=order.pk).status == RechargeOrder.Status.FAILED
    assert events(order.tx_no) == ["recharge.failed"]


def test_two_pays_at_once_succeed_once(order_factory):
    """A double click from two tabs: one recharge.succeeded."""
    order = order_factory()

    race(services.recharge_order_pay, services.recharge_order_pay, order.tx_no)

    assert RechargeOrder.objects.get(pk=order.pk).status == RechargeOrder.Status.SUCCEEDED
    assert events(order.tx_no) == ["recharge.succeeded"]
