"""Receivers wired up in ``AccountsConfig.ready``."""

from django.conf import settings

from config.beat import periodic_task_ensure


def sync_periodic_tasks(sender, **kwargs):
    """Make sure the reconciliation beat entry exists after ``migrate``."""
    periodic_task_ensure(
        name="accounts: reconcile pending recharges",
        task="accounts.reconcile_pending",
        every=settings.ACCOUNTS_RECONCILE_INTERVAL,
        queue="periodic",
    )
