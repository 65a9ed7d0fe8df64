"""Two stacks from this checkout side by side on one broker (the test's ``REDIS_URL``, or the
RabbitMQ of ``CELERY_BROKER_URL``: CI runs both), each on a database of its own: the
pytest-django test database and a second one, migrated and seeded for the test
(``second_database``). ``DEPLOYMENT_NAMESPACE`` keeps their messages apart; the
same namespace for both makes one's delivery land on the other's worker, which says so.
"""

import pytest
from django.conf import settings

from accounts.models import Recharge
from devstack.browser import Browser
from devstack.settle import wait_until
from notifications.models import Notification

# The error notifications/delivery.py logs for a delivery whose notification the worker's
# database does not have.
UNKNOWN = "which this database does not have"
DEADLINE = 15.0  # seconds for a payment's credit, or the error line, to show
HTTP_TIMEOUT = 15.0


def pay(stack, username: str, password: str) -> Browser:
    """Log in on ``stack``'s web app, top up 12.34 and pay at the cashier; the browser."""
    browser = Browser(
        base_url=stack.web_url, username=username, password=password, timeout=HTTP_TIMEOUT
    )
    browser.login()
    browser.finish(browser.top_up("12.34"), "pay")
    return browser


def wait_for_balance(browser: Browser, stack) -> None:
    """Until the wallet page shows a balance of 12.34 CNY (at most DEADLINE seconds)."""
    wait_until(
        lambda: (
            '<div class="balance" id="balance">12.34 CNY</div>'
            in browser.request("GET", "/", expect=200).text
        ),
        timeout=DEADLINE,
        interval=0.2,
        what=f"the balance of {browser.username} on {stack.web_url}",
        stack=stack,
    )


def second_stack_settings(database_url: str) -> dict:
    """The second stack runs on ``database_url`` as ``make run`` would: the development
    merchant that ``seed_demo`` created there is its payments merchant."""
    return {
        "DATABASE_URL": database_url,
        "ACCOUNTS_PAYMENTS_API_KEY": settings.DEV_PAYMENTS_API_KEY,
        "ACCOUNTS_WEBHOOK_SECRETS": settings.DEV_WEBHOOK_SECRET,
    }


def worker_log(stack) -> str:
    return (stack.log_dir / "worker.log").read_text(errors="replace")


@pytest.mark.e2e
def test_two_stacks_on_one_broker_each_deliver_their_own(second_database, start_stack, customer):
    """Two complete stacks (web, payments, worker) with namespaces of their own on one broker:
    a customer pays 12.34 on each through the real pages, and each wallet shows the credit
    within seconds; neither worker ever took a delivery the other's database has (no "which
    this database does not have" line in either log)."""
    first = start_stack()
    second = start_stack(
        **second_stack_settings(second_database),
        DEPLOYMENT_NAMESPACE=f"{settings.DEPLOYMENT_NAMESPACE}-second",
    )
    browsers = [pay(first, customer.username, customer.password), pay(second, "demo", "demo")]

    for browser, stack in zip(browsers, (first, second), strict=True):
        wait_for_balance(browser, stack)
    assert UNKNOWN not in worker_log(first)
    assert UNKNOWN not in worker_log(second)


@pytest.mark.e2e
def test_stacks_sharing_a_namespace_take_each_others_deliveries(
    second_database, start_stack, customer
):
    """The same namespace for both stacks (the mistake the namespace prevents): the first
    runs web and payments only, the second only a worker, on its own database. The first's
    payment sends its delivery message to the one worker consuming that namespace's queue,
    the second's, whose database lacks the notification: it logs the error line naming the
    notification, and the notification is never attempted."""
    first = start_stack(processes=("web", "payments"))
    second = start_stack(processes=("worker",), **second_stack_settings(second_database))
    assert second.namespace == first.namespace

    pay(first, customer.username, customer.password)
    recharge = Recharge.objects.get(account=customer.account)
    notification = Notification.objects.get(subject=recharge.tx_no)

    line = wait_until(
        lambda: next((x for x in worker_log(second).splitlines() if UNKNOWN in x), None),
        timeout=DEADLINE,
        interval=0.2,
        what="the second worker's error line",
        stack=second,
    )
    assert str(notification.pk) in line
    notification.refresh_from_db()
    assert (notification.state, notification.attempt_count) == (Notification.State.PENDING, 0)
