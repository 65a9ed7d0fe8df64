"""Celery wrappers for accounts' periodic work."""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import services


@shared_task(name="accounts.reconcile_pending")
def reconcile_pending():
    """Beat: ask payments about recharges still pending after ``ACCOUNTS_RECONCILE_AFTER``."""
    return services.recharges_reconcile_pending()


@shared_task(name="accounts.prune_receipts")
def prune_receipts():
    """Beat: delete notification receipts past ``ACCOUNTS_RECEIPT_RETENTION`` (in batches)."""
    return services.receipts_prune(
        now=timezone.now(),
        batch_size=settings.ACCOUNTS_PRUNE_BATCH,
        budget_seconds=settings.ACCOUNTS_PRUNE_BUDGET,
    )
