"""Celery wrappers for accounts' periodic work."""

from celery import shared_task

from . import services


@shared_task(name="accounts.reconcile_pending")
def reconcile_pending():
    """Beat: ask payments about recharges still pending after ``ACCOUNTS_RECONCILE_AFTER``."""
    return services.recharges_reconcile_pending()
