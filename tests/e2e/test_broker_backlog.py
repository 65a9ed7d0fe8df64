"""The harness's view of a stack's broker (devstack.stack.Stack), on whichever broker the test
runs with: Redis by default, RabbitMQ when ``CELERY_BROKER_URL`` names it (CI runs both)."""

import secrets

import pytest
from django.conf import settings

from devstack.settle import wait_until
from devstack.stack import Stack


@pytest.mark.e2e
def test_backlog_counts_what_waits_in_the_namespace_and_delete_empties_it():
    """Three wake-ups published in a namespace of its own (no worker) wait in its
    ``notifications`` queue and nowhere else: ``broker_backlog`` counts them as queued, none
    unacknowledged, and another namespace's counts nothing. On RabbitMQ ``broker_delete``
    then removes the queue, messages and all; on Redis the test deletes the key itself."""
    namespace = f"backlog-{secrets.token_hex(4)}"
    stack = Stack(settings={"DEPLOYMENT_NAMESPACE": namespace}, redis_url=settings.REDIS_URL)
    other = Stack(
        settings={"DEPLOYMENT_NAMESPACE": f"{namespace}-other"}, redis_url=settings.REDIS_URL
    )
    try:
        for n in range(3):
            stack.send_deliver(f"notification-{n}")
        wait_until(
            lambda: stack.broker_backlog("notifications") == {"queued": 3, "unacked": 0},
            timeout=10,
            interval=0.2,
            what="three messages waiting in the namespace's queue, none delivered",
        )
        assert stack.broker_backlog("periodic")["queued"] == 0
        assert other.broker_backlog("notifications") == {"queued": 0, "unacked": 0}
    finally:
        stack.close()
        other.close()
        if stack.broker_is_redis:
            with stack.redis() as client:
                client.delete(stack.broker_key("notifications"))
        else:
            stack.broker_delete()
    assert stack.broker_backlog("notifications")["queued"] == 0
