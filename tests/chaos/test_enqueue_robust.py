"""The on-commit enqueue with the broker down: found by scenario 2b, pinned here quickly."""

from unittest import mock

import pytest
from django.db import transaction
from kombu.exceptions import OperationalError

from notifications.models import Notification
from notifications.services import notification_create

pytestmark = pytest.mark.chaos


def test_broker_down_at_commit_leaves_the_row_for_the_sweeper(transactional_db, caplog):
    """A publish that fails after the commit (Redis down) is logged, not raised: the caller
    (a payment page) succeeds and the committed row waits in the outbox for the sweeper.
    Before the fix the callback was a functools.partial, Django's error log for a robust
    callback read its missing ``__qualname__`` and the AttributeError escaped as a 500."""
    failing = mock.patch(
        "notifications.tasks.deliver.apply_async",
        side_effect=OperationalError("Error 111 connecting to 127.0.0.1:6399."),
    )
    with failing as apply_async, transaction.atomic():
        notification = notification_create(
            sender_key="app_test",
            subject="TX1",
            event_type="recharge.succeeded",
            target_url="http://127.0.0.1:9/notify/",
            data={"tx_no": "TX1"},
        )

    apply_async.assert_called_once_with(args=(str(notification.pk),))
    row = Notification.objects.get(pk=notification.pk)
    assert (row.state, row.attempt_count) == (Notification.State.PENDING, 0)
    assert row.next_attempt_at == row.created_at  # due: the sweeper wakes a worker for it
    assert "in on_commit() during transaction" in caplog.text
