"""Merchants and their recharge orders. Money is an integer count of minor units."""

from django.conf import settings
from django.db import models

from core.money import format_minor

from .contract import RechargeStatus


class Merchant(models.Model):
    """A party that creates orders through the API and receives notifications.

    The API key is stored only as a SHA-256 hash, found by its non-secret prefix; the
    webhook secret (``whsec_…``) is kept because every notification is signed with it.
    After a secret is rolled, the previous one keeps signing too until
    ``previous_secret_expires_at``, so the merchant can switch at its own pace.
    """

    name = models.CharField(max_length=100)
    app_id = models.CharField(max_length=32, unique=True)
    api_key_prefix = models.CharField(max_length=16, unique=True)
    api_key_hash = models.CharField(max_length=64)
    webhook_secret = models.CharField(max_length=128)
    previous_webhook_secret = models.CharField(max_length=128, blank=True)
    previous_secret_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Until then notifications are signed with both secrets."
    )
    allowed_hosts = models.JSONField(
        default=list,
        blank=True,
        help_text="Host names the merchant's notify_url and return_url may point at; "
        "'.example.com' also allows its subdomains.",
    )
    ops_url = models.URLField(
        max_length=512,
        blank=True,
        help_text="Where operational notifications go (endpoint.disabled), signed like the "
        "others; an allowed host, like notify_url. Empty: none are sent.",
    )
    notify_queues = models.JSONField(
        default=list,
        db_default=[],
        blank=True,
        help_text="Queue names the merchant's notify_url may name as queue://<name> (an "
        "internal system consuming its notifications from the broker, scheme 1); given by "
        "staff (create_merchant --notify-queue). Empty: HTTP notify URLs only.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.name} ({self.app_id})"

    @property
    def is_authenticated(self) -> bool:
        """Lets DRF treat an API-key-authenticated merchant as ``request.user``."""
        return True


class RechargeOrder(models.Model):
    """A top-up order; ``status`` only ever moves 0→100 or 0→200 (conditional updates)."""

    Status = RechargeStatus

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="orders")
    out_trade_no = models.CharField(max_length=64, help_text="The merchant's order number.")
    tx_no = models.CharField(max_length=40, unique=True, help_text="Our transaction number.")
    account_no = models.CharField(max_length=32)
    amount = models.BigIntegerField(help_text="Minor units (fen, cents).")
    currency = models.CharField(max_length=3, help_text="ISO 4217 code.")
    notify_url = models.URLField(max_length=512)
    return_url = models.URLField(max_length=512)
    status = models.IntegerField(choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(max_length=32, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "out_trade_no"], name="order_out_trade_no_once"
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="order_amount_positive"),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="order_status_created_idx"),
            # Staff's Find and the admin's search match an identifier quoted without its
            # merchant (the unique index above leads with the merchant): an index each, so
            # the three-way OR is a bitmap OR of index scans, not a scan of every order.
            models.Index(fields=["out_trade_no"], name="order_out_trade_no_idx"),
            models.Index(fields=["account_no"], name="order_account_no_idx"),
        ]

    def __str__(self):
        amount = format_minor(self.amount, self.currency)
        return f"{self.tx_no} {amount} ({self.get_status_display()})"


class MerchantMember(models.Model):
    """A user of a merchant's portal (/portal/): sees only that merchant's data. An admin
    may also resend notifications, recover endpoints and roll credentials; a viewer reads."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Admin (may resend and roll credentials)"
        VIEWER = "viewer", "Viewer (read only)"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="merchant_membership"
    )
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="members")
    role = models.CharField(max_length=8, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.user} of {self.merchant} ({self.role})"

    @property
    def operate_refusal(self) -> str:
        """Why this member may not change anything (resend, recover, roll credentials), or
        "" when they may: a viewer reads only, and a deactivated merchant's portal is
        read-only for everyone (its orders stay readable, nothing is sent or rolled)."""
        if not self.merchant.is_active:
            return "This merchant is deactivated: the portal is read-only. Contact support."
        if self.role != self.Role.ADMIN:
            return "Viewers may not change anything; ask one of your admins."
        return ""

    @property
    def may_operate(self) -> bool:
        """Whether this member may change anything (see ``operate_refusal``)."""
        return not self.operate_refusal
