"""The periodic tasks the pipeline needs, in django-celery-beat's admin (issue 12): staff are
warned when one is disabled or deleted, and "run" says it only queued the task."""

from unittest import mock

import pytest
from django.conf import settings
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

SWEEPER = "notifications: sweep due and orphaned notifications"
CHANGELIST = reverse("admin:django_celery_beat_periodictask_changelist")


@pytest.fixture
def sweeper(db):
    """The sweeper's beat entry, as ``migrate`` made it (core/beat.py)."""
    assert SWEEPER in [entry["name"] for entry in settings.PERIODIC_TASKS]
    return PeriodicTask.objects.get(name=SWEEPER)


def banners(client, url=None) -> list[str]:
    response = client.get(url or reverse("admin:index"))
    assert response.status_code == 200
    return response.context["banners"]


def test_no_warning_while_every_pipeline_task_is_enabled(admin_client, sweeper):
    """All of PERIODIC_TASKS present and enabled: no banner."""
    assert banners(admin_client) == []


def test_disabling_the_sweeper_is_named_on_every_admin_page(admin_client, sweeper):
    """Disabled (here by the list's own action): the index and other pages say retries stop
    until it is re-enabled."""
    admin_client.post(CHANGELIST, {"action": "disable_tasks", "_selected_action": [sweeper.pk]})

    expected = (
        f"Periodic task “{SWEEPER}” is disabled: retries stop: no failed or orphaned "
        "notification is sent again until it is re-enabled."
    )
    assert banners(admin_client) == [expected]
    assert banners(admin_client, reverse("admin:payments_rechargeorder_changelist")) == [expected]


def test_deleting_the_sweeper_warns_first_and_then_on_every_page(admin_client, sweeper):
    """Its delete confirmation says what stops; once deleted, every page says it is missing
    and how it comes back."""
    delete = reverse("admin:django_celery_beat_periodictask_delete", args=[sweeper.pk])

    confirmation = admin_client.get(delete).content.decode()
    admin_client.post(delete, {"post": "yes"})

    assert f"Periodic task “{SWEEPER}” is deleted: retries stop" in confirmation
    assert banners(admin_client) == [
        f"Periodic task “{SWEEPER}” is missing: retries stop: no failed or orphaned "
        "notification is sent again until it is recreated (manage.py migrate does it)."
    ]


def test_the_log_in_page_shows_no_banner(client, sweeper):
    """Anonymous visitors of the admin's log-in page learn nothing of the pipeline."""
    PeriodicTask.objects.filter(pk=sweeper.pk).update(enabled=False)

    response = client.get(reverse("admin:login"))

    assert response.context["banners"] == []
    assert SWEEPER not in response.content.decode()


def test_run_says_the_task_was_only_queued(admin_client, sweeper):
    """ "Run" sends the task to the broker; the message says it was queued, not run."""
    with mock.patch("celery.app.task.Task.apply_async") as apply_async:
        response = admin_client.post(
            CHANGELIST, {"action": "run_tasks", "_selected_action": [sweeper.pk]}, follow=True
        )

    assert apply_async.call_count == 1
    assert [str(m) for m in response.context["messages"]] == [
        "Queued 1 task(s): a worker runs each when it takes it from the queue (the worker's "
        "log shows when); none has run yet."
    ]
