"""Outbox rows (one per event and target URL) and their delivery attempts."""

import uuid

from django.db import models


class Notification(models.Model):
    """One event to deliver to one ``target_url``; the row, not the broker, is the truth.

    ``body`` is the exact JSON sent on every attempt (frozen at creation), ``webhook_id``
    its Standard Webhooks ``webhook-id``. ``next_attempt_at`` is when the next attempt is due;
    ``broker_eta`` when a task message for it is expected to run (null: none in the broker).
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending (attempt claimed)"
        DELIVERED = "delivered", "Delivered (acknowledged)"
        EXHAUSTED = "exhausted", "Exhausted (window closed)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sender_key = models.CharField(
        max_length=64, help_text="Whose secrets sign it (for payments: the merchant app_id)."
    )
    subject = models.CharField(
        max_length=64, db_index=True, help_text="What it is about, e.g. the order's tx_no."
    )
    event_type = models.CharField(max_length=64)
    target_url = models.URLField(max_length=512, help_text="The receiver's notify_url.")
    body = models.TextField(help_text="Frozen JSON payload, sent byte for byte on every attempt.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    broker_eta = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="notif_state_due_idx"),
            models.Index(fields=["state", "claimed_at"], name="notif_state_claimed_idx"),
        ]

    def __str__(self):
        return f"{self.event_type} {self.subject} → {self.target_url} ({self.state})"

    @property
    def webhook_id(self) -> str:
        """The Standard Webhooks message id, stable across every retry."""
        return f"msg_{self.id.hex}"


class DeliveryAttempt(models.Model):
    """One HTTP POST of a notification: when, how long, what came back."""

    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="attempts"
    )
    number = models.PositiveIntegerField(help_text="1 for the first attempt.")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True, help_text="First 1 KiB of the response.")
    error = models.CharField(max_length=255, blank=True)
    succeeded = models.BooleanField()

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["notification", "number"], name="attempt_once"),
        ]

    def __str__(self):
        return f"attempt {self.number} of {self.notification_id}"
