"""Balances, the ledger, the recharges this side started, and a log of notifications received.

Money is an integer count of minor units. A ``tx_no`` can be credited once: the ledger's
unique constraint is the last line of defence behind the conditional status update.
"""

from django.conf import settings
from django.db import models

from core.money import format_minor
from payments.contract import RechargeStatus


class Account(models.Model):
    """A user's balance in one currency; changed only through ``LedgerEntry`` rows."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="account"
    )
    account_no = models.CharField(max_length=32, unique=True)
    currency = models.CharField(max_length=3)
    balance = models.BigIntegerField(default=0, help_text="Minor units.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.account_no} ({self.user})"


class LedgerEntry(models.Model):
    """One credit to an account for one payments transaction."""

    class Source(models.TextChoices):
        NOTIFICATION = "notification", "Notification"
        RECONCILIATION = "reconciliation", "Reconciliation"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="ledger")
    tx_no = models.CharField(max_length=40, unique=True)
    amount = models.BigIntegerField(help_text="Minor units.")
    currency = models.CharField(max_length=3)
    source = models.CharField(max_length=16, choices=Source.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "ledger entries"

    def __str__(self):
        return f"{self.tx_no} +{format_minor(self.amount, self.currency)}"


# A failed recharge as the user reads it, by the failure_reason payments sent.
FAILURE_LABELS = {
    "expired": "Expired — not paid",
    "declined": "Declined",
    "cancelled": "Cancelled",
}


class Recharge(models.Model):
    """A recharge this side asked payments for; status moves 0→100 or 0→200 only."""

    Status = RechargeStatus

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="recharges")
    out_trade_no = models.CharField(max_length=64, unique=True)
    tx_no = models.CharField(max_length=40, unique=True, null=True, blank=True)
    amount = models.BigIntegerField(help_text="Minor units.")
    currency = models.CharField(max_length=3)
    status = models.IntegerField(choices=Status.choices, default=Status.PENDING)
    cashier_url = models.URLField(max_length=512, blank=True)
    # A database default as well: the previous release's web processes, still running during
    # a rolling deploy, insert recharges without this column.
    failure_reason = models.CharField(
        max_length=32,
        blank=True,
        default="",
        db_default="",
        help_text="Why payments says it failed (expired, declined, cancelled); empty unless "
        "failed, or when payments did not say.",
    )
    closed_by = models.CharField(max_length=16, choices=LedgerEntry.Source.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_checked_at = models.DateTimeField(
        null=True, blank=True, help_text="Last time reconciliation asked payments about it."
    )

    class Meta:
        indexes = [
            models.Index(fields=["status", "last_checked_at"], name="recharge_status_checked_idx"),
            models.Index(fields=["status", "created_at"], name="recharge_status_created_idx"),
        ]

    def __str__(self):
        amount = format_minor(self.amount, self.currency)
        return f"{self.out_trade_no} {amount} ({self.get_status_display()})"

    def status_label(self) -> str:
        """The status as the user reads it: a failed recharge named by why it failed
        ("Expired — not paid", "Declined", "Cancelled"), "Failed" when payments did not say."""
        if self.status == self.Status.FAILED:
            return FAILURE_LABELS.get(self.failure_reason, "Failed")
        return self.get_status_display()


class InboundNotification(models.Model):
    """Every verified notification received, by ``webhook-id``: how often and what came of it."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", "Applied"
        DUPLICATE = "duplicate", "Duplicate (already applied)"
        REJECTED = "rejected", "Rejected (disagrees with our recharge)"

    webhook_id = models.CharField(max_length=64, unique=True)
    payload_sha256 = models.CharField(
        max_length=64,
        blank=True,
        help_text="SHA-256 of the body first received under this webhook-id; a later body "
        "under the same id must be identical.",
    )
    tx_no = models.CharField(max_length=40, blank=True, db_index=True)
    out_trade_no = models.CharField(max_length=64, blank=True)
    deliveries = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    reason = models.CharField(max_length=255, blank=True)
    first_received_at = models.DateTimeField(auto_now_add=True)
    last_received_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            # The prune task reads the receipts received longest ago as a range of this index.
            models.Index(fields=["last_received_at"], name="receipt_last_received_idx"),
            # Staff's Find: a receipt by any identifier the notification carried.
            models.Index(fields=["out_trade_no"], name="receipt_out_trade_no_idx"),
        ]

    def __str__(self):
        return f"{self.webhook_id} ({self.outcome})"
