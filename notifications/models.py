"""Outbox rows (one per event and target URL), their delivery attempts, and the endpoints
they go to with each endpoint's health (its circuit breaker)."""

import uuid

from django.db import models


class Endpoint(models.Model):
    """Where notifications go: a sender (whose secrets sign them) and the origin of the URL
    (``scheme://host:port``). Requests in flight are capped per endpoint, and its health
    decides whether it is sent anything at all (notifications/circuit.py):

    closed (healthy) → open after consecutive failures or a failure rate over a window: no
    requests; due notifications wait in the database → half-open once ``retry_at`` passes:
    one probe → closed on success, open again (for longer) on failure. Disabled after failing
    continuously for ``NOTIFY_ENDPOINT_DISABLE_AFTER``: nothing is sent until staff re-enable it.
    """

    class State(models.TextChoices):
        CLOSED = "closed", "Healthy (circuit closed)"
        OPEN = "open", "Failing (circuit open)"
        HALF_OPEN = "half_open", "Probing (circuit half-open)"
        DISABLED = "disabled", "Disabled"

    sender_key = models.CharField(max_length=64, help_text="Whose secrets sign its notifications.")
    origin = models.CharField(max_length=300, help_text="scheme://host:port of its URLs.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.CLOSED)
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="First failure since its last success."
    )
    opened_count = models.PositiveIntegerField(
        default=0, help_text="Times the circuit opened since it last closed (lengthens the wait)."
    )
    retry_at = models.DateTimeField(
        null=True, blank=True, help_text="While open: when one probe may be sent."
    )
    window_started_at = models.DateTimeField(null=True, blank=True)
    window_attempts = models.PositiveIntegerField(default=0)
    window_failures = models.PositiveIntegerField(default=0)
    attempts_total = models.PositiveBigIntegerField(default=0)
    failures_total = models.PositiveBigIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="Round-robin order among endpoints with work."
    )
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sender_key", "origin"], name="endpoint_once"),
        ]
        indexes = [models.Index(fields=["state", "last_claimed_at"], name="endpoint_state_idx")]

    def __str__(self):
        return f"{self.origin} ({self.sender_key})"


class Notification(models.Model):
    """One event to deliver to one ``target_url``; the row, not the broker, is the truth.

    ``body`` is the exact JSON sent on every attempt (frozen at creation), ``webhook_id``
    its Standard Webhooks ``webhook-id``. ``next_attempt_at`` is when the next attempt is due
    (it waits longer while its endpoint's circuit is open).
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending (attempt claimed)"
        DELIVERED = "delivered", "Delivered (acknowledged)"
        EXHAUSTED = "exhausted", "Exhausted (window closed)"

    # Not acknowledged by the receiver: what waits, and what staff may have to act on. Named
    # rather than "not delivered": a state IN (…) reads these rows through the state-led
    # indexes, where a NOT reads the delivered history too.
    UNDELIVERED_STATES = (State.PENDING, State.SENDING, State.EXHAUSTED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sender_key = models.CharField(
        max_length=64, help_text="Whose secrets sign it (for payments: the merchant app_id)."
    )
    subject = models.CharField(
        max_length=64, db_index=True, help_text="What it is about, e.g. the order's tx_no."
    )
    event_type = models.CharField(max_length=64)
    target_url = models.URLField(max_length=512, help_text="The receiver's notify_url.")
    # Nullable for one release: the previous release's web processes, still running during a
    # rolling deploy, write rows without one; the sweeper adopts them (endpoints.py).
    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.PROTECT, related_name="notifications", null=True
    )
    body = models.TextField(help_text="Frozen JSON payload, sent byte for byte on every attempt.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # Unused since workers claim due rows themselves; kept one release so the previous
    # release's processes keep working during a rolling deploy; the next migration drops it.
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
            models.Index(
                fields=["endpoint", "state", "next_attempt_at"], name="notif_endpoint_due_idx"
            ),
            # The prune task reads the oldest delivered rows as a range of this index.
            models.Index(fields=["state", "delivered_at"], name="notif_state_delivered_idx"),
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
    # A database default as well: the previous release's workers, still running during a
    # rolling deploy, insert attempt rows without this column.
    request_headers = models.JSONField(
        default=dict,
        db_default={},
        blank=True,
        help_text="The headers sent (webhook-id, -timestamp, -signature, Content-Type, "
        "User-Agent); empty when nothing was sent. Signatures only, never a secret.",
    )
    response_excerpt = models.TextField(blank=True, help_text="First 1 KiB of the response.")
    error = models.CharField(max_length=255, blank=True)
    succeeded = models.BooleanField()

    class Meta:
        ordering = ["number"]
        constraints = [
            models.UniqueConstraint(fields=["notification", "number"], name="attempt_once"),
        ]
        # The dashboard's hourly figures read the last day's attempts (notifications/stats.py).
        indexes = [models.Index(fields=["started_at"], name="attempt_started_idx")]

    def __str__(self):
        return f"attempt {self.number} of {self.notification_id}"
