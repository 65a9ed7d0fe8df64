"""Staff's view of merchants and recharge orders: find stuck orders and push them on.

Orders are view-only: status and money move only through ``payments.services``, which the
actions call. A merchant's API key hash and webhook secret are never shown.
"""

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from core.admin import (
    PageAction,
    PageActionsMixin,
    ReadOnlyAdminMixin,
    admin_search_link,
    links_line,
    staff_action_log,
    when,
)
from core.admin_search import ExactIndexedSearchMixin
from core.money import format_minor
from notifications.selectors import notifications_for_subject

from . import selectors, services
from .models import Merchant, MerchantMember, RechargeOrder

Status = RechargeOrder.Status
# Why a final order has no notification: retention (notifications' prune task) deleted it.
PRUNED = (
    "its notification was delivered, then deleted after the retention period (NOTIFY_RETENTION)"
)


class MerchantForm(forms.ModelForm):
    """``allowed_hosts`` edited as a comma-separated line and validated like onboarding."""

    allowed_hosts = forms.CharField(
        max_length=2000,
        help_text="Comma-separated host names the merchant's notify_url and return_url may "
        "name; '.example.com' also covers its subdomains.",
    )

    ops_url = forms.URLField(
        required=False,
        max_length=512,
        assume_scheme="https",
        help_text=Merchant._meta.get_field("ops_url").help_text,
    )

    class Meta:
        model = Merchant
        fields = ("name", "is_active", "allowed_hosts", "ops_url")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["allowed_hosts"] = ", ".join(self.instance.allowed_hosts)

    def clean_allowed_hosts(self):
        hosts = self.cleaned_data["allowed_hosts"].split(",")
        try:
            return services.allowed_hosts_normalize([h for h in hosts if h.strip()])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean(self):
        """The ops URL follows notify_url's rules, against the hosts as edited here."""
        cleaned = super().clean()
        ops_url, hosts = cleaned.get("ops_url"), cleaned.get("allowed_hosts")
        if ops_url and hosts is not None:
            merchant = Merchant(allowed_hosts=hosts)
            reason = selectors.merchant_url_refusal(merchant=merchant, url=ops_url, notify=True)
            if reason:
                self.add_error("ops_url", reason)
        return cleaned


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    """Merchants: rename, deactivate or change allowed hosts; credentials are issued by
    ``create_merchant``, ``roll_webhook_secret`` and ``revoke_api_key`` only."""

    form = MerchantForm
    # A whitelist rather than ``exclude``: a secret field added later stays hidden. The key's
    # prefix is left out too, it is the first characters of the secret key.
    fields = (
        "name",
        "app_id",
        "is_active",
        "allowed_hosts",
        "ops_url",
        "notify_queues",
        "previous_secret_expires_at",
        "created_at",
    )
    # Queues are given by `create_merchant --notify-queue` (an operator's decision: the
    # subscriber must run); shown here so staff see where such a merchant is notified.
    readonly_fields = ("app_id", "notify_queues", "previous_secret_expires_at", "created_at")
    list_display = ("name", "app_id", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "=app_id")
    ordering = ("name",)

    def has_add_permission(self, request):
        # ``create_merchant`` generates the key and secret and shows them once.
        return False

    def has_delete_permission(self, request, obj=None):
        # Orders and queued notifications refer to the merchant: deactivate it instead.
        return False


@admin.register(MerchantMember)
class MerchantMemberAdmin(admin.ModelAdmin):
    """Who may log in to a merchant's portal (/portal/), and as admin or viewer: listed, and
    removed, here; made only by ``create_merchant --portal-user`` and ``merchant_member_add``.
    A portal admin rolls the merchant's webhook secret and API key, credentials that staff
    never get from the admin (``MerchantAdmin``): staff adding themselves as one would."""

    list_display = ("user", "merchant", "role", "created_at")
    list_filter = ("role",)
    list_select_related = ("user", "merchant")
    search_fields = ("=user__username", "=merchant__app_id")
    raw_id_fields = ("user", "merchant")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class StuckFilter(admin.SimpleListFilter):
    """Orders that need staff's attention, by reason."""

    title = "stuck"
    parameter_name = "stuck"
    SELECTORS = {
        "pending_too_long": lambda orders: selectors.recharge_orders_pending_too_long(
            orders=orders, now=timezone.now()
        ),
        "unacknowledged": lambda orders: selectors.recharge_orders_unacknowledged(orders=orders),
        "exhausted": lambda orders: selectors.recharge_orders_exhausted(orders=orders),
    }

    def lookups(self, request, model_admin):
        return [
            ("pending_too_long", "Pending too long"),
            ("unacknowledged", "Final, not acknowledged by the merchant"),
            ("exhausted", "Notification exhausted (retries ran out)"),
        ]

    def queryset(self, request, queryset):
        select = self.SELECTORS.get(self.value())
        return select(queryset) if select else queryset


@admin.register(RechargeOrder)
class RechargeOrderAdmin(
    ExactIndexedSearchMixin, PageActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    """Recharge orders, view-only, with their notifications and every delivery attempt;
    "Resend notification" and "Expire" as buttons on an order's page and as bulk actions."""

    # What staff read first, narrow enough for 1280 px: identifiers, money, both states.
    list_display = (
        "tx_no",
        "out_trade_no",
        "merchant_name",
        "amount_display",
        "status",
        "notification_state",
        "created_at",
    )
    list_filter = ("status", StuckFilter)
    list_select_related = ("merchant",)
    search_fields = ("=tx_no", "=out_trade_no", "=account_no")
    search_help_text = "Exact tx_no, out_trade_no or account_no."
    ordering = ("-created_at",)
    actions = ("resend_notifications", "expire_pending")
    page_actions = (
        PageAction("resend", "Resend notification", lambda order: order.status != Status.PENDING),
        PageAction("expire", "Expire", lambda order: order.status == Status.PENDING),
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "tx_no",
                    "out_trade_no",
                    "merchant",
                    "account_no",
                    "amount_display",
                    "status",
                    "failure_reason",
                    "related_links",
                )
            },
        ),
        ("Timeline", {"fields": ("created_at", "paid_at", "finished_at")}),
        ("Merchant URLs", {"fields": ("notify_url", "return_url")}),
        ("Notifications", {"fields": ("notifications_table",)}),
    )
    readonly_fields = ("amount_display", "related_links", "notifications_table")

    def get_fieldsets(self, request, obj=None):
        """The notifications (attempts, the merchant's responses) only for staff who may view
        notifications, as Find shows them only to those."""
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.has_perm("notifications.view_notification"):
            return fieldsets
        return [fieldset for fieldset in fieldsets if fieldset[0] != "Notifications"]

    def get_queryset(self, request):
        orders = super().get_queryset(request)
        return selectors.recharge_orders_with_notification_state(orders=orders)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, order):
        return format_minor(order.amount, order.currency)

    @admin.display(description="notification", ordering="notification_state")
    def notification_state(self, order):
        return order.notification_state or "—"

    @admin.display(description="merchant", ordering="merchant__name")
    def merchant_name(self, order):
        return order.merchant.name

    @admin.display(description="on the accounts side")
    def related_links(self, order):
        """Accounts' rows about this order, by admin search (no model of theirs imported)."""
        return links_line(
            [
                admin_search_link(
                    "admin:accounts_recharge_changelist", q=order.tx_no, text="recharge"
                ),
                admin_search_link(
                    "admin:accounts_inboundnotification_changelist",
                    q=order.tx_no,
                    text="receipt of the notification",
                ),
                admin_search_link(
                    "admin:accounts_ledgerentry_changelist", q=order.tx_no, text="ledger entry"
                ),
                admin_search_link(
                    "admin:accounts_account_changelist", q=order.account_no, text="account"
                ),
            ]
        )

    @admin.display(description="Notifications and delivery attempts")
    def notifications_table(self, order):
        notifications = notifications_for_subject(subject=order.tx_no)
        blocks = [(_notification_block(notification),) for notification in notifications]
        if blocks:
            return format_html_join("", "{}", blocks)
        if order.status == Status.PENDING:
            return "None yet: the merchant is notified when the order becomes final."
        return f"None left: {PRUNED}."

    @admin.action(permissions=["operate"], description="Resend notification now")
    def resend_notifications(self, request, queryset):
        resent = sum(bool(self._resend(request, order)) for order in queryset)
        skipped = queryset.count() - resent
        self.message_user(
            request,
            f"Resend queued for the notifications of {resent} order(s); skipped {skipped} "
            "(still pending, an attempt in flight, or its notification deleted after the "
            "retention period).",
            messages.SUCCESS if resent else messages.WARNING,
        )

    def page_resend(self, request, order):
        """The order page's "Resend notification"."""
        scheduled = self._resend(request, order)
        if scheduled:
            self.message_user(
                request,
                f"Resend queued: {scheduled} notification(s) due now; a worker sends it within "
                "seconds (unless its endpoint is failing or disabled) and the attempt appears "
                "below.",
                messages.SUCCESS,
            )
        elif notifications_for_subject(subject=order.tx_no).exists():
            self.message_user(
                request,
                "Not resent: an attempt is in flight; look again shortly.",
                messages.WARNING,
            )
        else:
            message = (
                f"Not resent: {PRUNED}; nothing is left to send. The merchant can query the "
                "order through the API."
            )
            self.message_user(request, message, messages.WARNING)

    def _resend(self, request, order) -> int:
        scheduled = services.recharge_order_resend_notifications(tx_no=order.tx_no)
        outcome = f"{scheduled} scheduled" if scheduled else "skipped"
        staff_action_log(
            modeladmin=self, request=request, obj=order, message=f"Resend notification: {outcome}."
        )
        return scheduled

    @admin.action(permissions=["operate"], description="Expire selected pending orders")
    def expire_pending(self, request, queryset):
        pending = queryset.filter(status=Status.PENDING)
        expired = sum(self._expire(request, order) for order in pending)
        skipped = queryset.count() - expired
        self.message_user(
            request,
            f"Expired {expired} order(s); skipped {skipped} (not pending).",
            messages.SUCCESS if expired else messages.WARNING,
        )

    def page_expire(self, request, order):
        """The order page's "Expire" (offered while the order is pending)."""
        if self._expire(request, order):
            self.message_user(
                request,
                "Expired: the order failed; the merchant is being notified.",
                messages.SUCCESS,
            )
        else:
            order.refresh_from_db()
            self.message_user(
                request,
                f"Not expired: the order is {order.get_status_display()} now.",
                messages.WARNING,
            )

    def _expire(self, request, pending) -> bool:
        order = services.recharge_order_expire(tx_no=pending.tx_no)
        # Paid in the meantime: the conditional update left it alone.
        done = order.status == Status.FAILED
        outcome = "expired" if done else f"not expired (now {order.get_status_display()})"
        staff_action_log(modeladmin=self, request=request, obj=order, message=f"Expire: {outcome}.")
        return done


def _notification_block(notification) -> str:
    """One notification's summary line and its attempts as an HTML table, all escaped."""
    summary = format_html(
        '<p><a href="{}">{}</a> · {} · <strong>{}</strong> · {} attempt(s) · next due {} · '
        "to {}</p>",
        reverse("admin:notifications_notification_change", args=[notification.pk]),
        notification.webhook_id,
        notification.event_type,
        notification.state,
        notification.attempt_count,
        when(notification.next_attempt_at),
        notification.target_url,
    )
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
        (
            (
                attempt.number,
                when(attempt.started_at),
                attempt.duration_ms,
                attempt.status_code or "—",
                attempt.error or "—",
                attempt.response_excerpt,
            )
            for attempt in notification.attempts.all()
        ),
    )
    return format_html(
        "{}<table><thead><tr><th>#</th><th>Started</th><th>Duration (ms)</th>"
        "<th>Status code</th><th>Error</th><th>Response excerpt</th></tr></thead>"
        "<tbody>{}</tbody></table>",
        summary,
        rows or format_html('<tr><td colspan="6">{}</td></tr>', "No attempt yet."),
    )
