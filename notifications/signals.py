"""Receivers wired up in ``NotificationsConfig.ready``."""

from django.conf import settings

from config.beat import periodic_task_ensure


def sync_periodic_tasks(sender, **kwargs):
    """Make sure the sweeper's beat entry exists after ``migrate``."""
    periodic_task_ensure(
        name="notifications: sweep due and orphaned notifications",
        task="notifications.sweep",
        every=settings.NOTIFY_SWEEP_INTERVAL,
        queue="periodic",
    )
