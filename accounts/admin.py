"""Staff's view of balances, the ledger, recharges and notifications received.

All view-only: balances change only through ledger entries written by
``accounts.services``. Recharges stuck pending can be reconciled now, through the same
code path as the periodic job.
"""

from collections import Counter

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from core.admin import (
    PageAction,
    PageActionsMixin,
    ReadOnlyAdminMixin,
    admin_find_link,
    admin_search_link,
    links_line,
    staff_action_log,
)
from core.admin_search import ExactIndexedSearchMixin
from core.money import format_minor

from . import selectors, services
from .models import Account, InboundNotification, LedgerEntry, Recharge
from .payments_client import PaymentsApiError, PaymentsClient


@admin.register(Account)
class AccountAdmin(ExactIndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Accounts and their balances; the balance is the sum of the ledger, never typed in."""

    list_display = ("account_no", "user", "balance_display", "created_at")
    list_select_related = ("user",)
    search_fields = ("=account_no", "=user__username")
    search_help_text = "Exact account_no or username."
    ordering = ("-created_at",)
    fields = ("account_no", "user", "balance_display", "created_at", "related_links")
    readonly_fields = ("balance_display", "related_links")

    @admin.display(description="balance", ordering="balance")
    def balance_display(self, account):
        return format_minor(account.balance, account.currency)

    @admin.display(description="its rows")
    def related_links(self, account):
        q = account.account_no
        return links_line(
            [
                admin_search_link("admin:accounts_recharge_changelist", q=q, text="recharges"),
                admin_search_link("admin:accounts_ledgerentry_changelist", q=q, text="ledger"),
                admin_search_link(
                    "admin:payments_rechargeorder_changelist", q=q, text="orders at payments"
                ),
            ]
        )


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ExactIndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """The ledger: append-only, so no add, change or delete here."""

    list_display = ("tx_no", "account", "amount_display", "source", "created_at")
    list_filter = ("source",)
    list_select_related = ("account",)
    search_fields = ("=tx_no", "=account__account_no")
    ordering = ("-created_at",)
    fields = ("tx_no", "account_link", "amount_display", "source", "created_at", "related_links")
    readonly_fields = ("account_link", "amount_display", "related_links")

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, entry):
        return format_minor(entry.amount, entry.currency)

    @admin.display(description="account")
    def account_link(self, entry):
        return _account_link(entry.account)

    @admin.display(description="same case")
    def related_links(self, entry):
        return _case_links(entry.tx_no)


class PendingTooLongFilter(admin.SimpleListFilter):
    """Recharges payments has not given us a final answer about for ``STUCK_AFTER``."""

    title = "stuck"
    parameter_name = "stuck"

    def lookups(self, request, model_admin):
        return [("pending_too_long", "Pending too long")]

    def queryset(self, request, queryset):
        if self.value() != "pending_too_long":
            return queryset
        return selectors.recharges_pending_too_long(recharges=queryset, now=timezone.now())


@admin.register(Recharge)
class RechargeAdmin(
    ExactIndexedSearchMixin, PageActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    """Recharges this side started; "Reconcile now" (a button on its page, and a bulk action)
    asks payments how each stands and applies the answer."""

    # Narrow enough for 1280 px: the account by its number, the states before the times.
    list_display = (
        "out_trade_no",
        "tx_no",
        "account_no",
        "amount_display",
        "status",
        "closed_by",
        "last_checked_at",
        "created_at",
    )
    list_filter = ("status", PendingTooLongFilter, "closed_by")
    list_select_related = ("account",)
    search_fields = ("=out_trade_no", "=tx_no", "=account__account_no")
    ordering = ("-created_at",)
    actions = ("reconcile_now",)
    page_actions = (PageAction("reconcile", "Reconcile now"),)
    fields = (
        "out_trade_no",
        "tx_no",
        "account_link",
        "amount_display",
        "status",
        "closed_by",
        "cashier_url",
        "created_at",
        "updated_at",
        "last_checked_at",
        "related_links",
    )
    readonly_fields = ("account_link", "amount_display", "related_links")

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, recharge):
        return format_minor(recharge.amount, recharge.currency)

    @admin.display(description="account", ordering="account__account_no")
    def account_no(self, recharge):
        return recharge.account.account_no

    @admin.display(description="account")
    def account_link(self, recharge):
        return _account_link(recharge.account)

    @admin.display(description="same case")
    def related_links(self, recharge):
        if not recharge.tx_no:
            return "No tx_no yet: payments has not answered the create call."
        return _case_links(recharge.tx_no)

    @admin.action(permissions=["operate"], description="Reconcile now (ask payments)")
    def reconcile_now(self, request, queryset):
        self._reconcile_and_report(request, queryset.select_related("account"))

    def page_reconcile(self, request, recharge):
        """The recharge page's "Reconcile now"."""
        self._reconcile_and_report(request, [recharge])

    def _reconcile_and_report(self, request, recharges) -> None:
        def log(recharge, outcome):
            staff_action_log(
                modeladmin=self, request=request, obj=recharge, message=f"Reconcile now: {outcome}."
            )

        outcomes, failures = _reconcile(recharges, log=log)
        if outcomes:
            summary = ", ".join(f"{count} {outcome}" for outcome, count in outcomes.items())
            self.message_user(request, f"Asked payments: {summary}.", messages.SUCCESS)
        for failure in failures:
            self.message_user(request, f"Not reconciled: {failure}", messages.ERROR)


def _reconcile(recharges, *, log=lambda recharge, outcome: None) -> tuple[Counter, list[str]]:
    """Reconcile each recharge; what was found, counted (``_reconcile_found``), and one line
    per recharge that failed. ``log(recharge, found)`` is called for each recharge tried.

    Stops at the first unreachable-API error, as the periodic job does: each further call
    would only wait out its own timeout.
    """
    client = PaymentsClient.from_settings()
    outcomes: Counter = Counter()
    failures = []
    for recharge in recharges:
        try:
            outcome = services.recharge_reconcile(recharge=recharge, client=client)
        except (PaymentsApiError, services.ResultMismatch, services.UnknownRecharge) as exc:
            failures.append(f"{recharge.out_trade_no}: {exc}")
            log(recharge, f"failed: {exc}")
            if isinstance(exc, PaymentsApiError) and exc.status_code is None:
                failures.append("stopped: the payments API is unreachable.")
                break
        else:
            found = _reconcile_found(outcome=outcome, recharge=recharge)
            outcomes[found] += 1
            log(recharge, found)
    return outcomes, failures


def _reconcile_found(*, outcome: str, recharge: Recharge) -> str:
    """What reconciling ``recharge`` found, in staff's words, from ``recharge_reconcile``'s
    outcome ("applied", "duplicate", "pending") and the recharge's status after it."""
    if outcome == "pending":
        return "still pending at payments (nothing to apply)"
    recharge.refresh_from_db(fields=["status"])
    credited = recharge.status == Recharge.Status.SUCCEEDED
    if outcome == "applied":
        return "credited now" if credited else "failed at payments, marked failed now"
    return "already credited" if credited else "already marked failed"


def _account_link(account: Account) -> str:
    url = reverse("admin:accounts_account_change", args=[account.pk])
    return format_html('<a href="{}">{}</a>', url, account)


def _case_links(tx_no: str) -> str:
    """Links to the rows of the case ``tx_no`` on both sides, as admin searches: none names a
    row the user may not view, and payments' are reached without importing its models."""
    return links_line(
        [
            admin_search_link("admin:payments_rechargeorder_changelist", q=tx_no, text="order"),
            admin_search_link(
                "admin:notifications_notification_changelist", q=tx_no, text="notifications"
            ),
            admin_search_link("admin:accounts_recharge_changelist", q=tx_no, text="recharge"),
            admin_search_link(
                "admin:accounts_inboundnotification_changelist", q=tx_no, text="receipts"
            ),
            admin_search_link(
                "admin:accounts_ledgerentry_changelist", q=tx_no, text="ledger entry"
            ),
            admin_find_link(q=tx_no, text="everything"),
        ]
    )


@admin.register(InboundNotification)
class InboundNotificationAdmin(ExactIndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every verified notification received and what came of it; filter on "Rejected" to
    find those that disagreed with our recharge and were never applied."""

    list_display = ("webhook_id", "tx_no", "outcome", "reason", "deliveries", "last_received_at")
    list_filter = ("outcome",)
    search_fields = ("=tx_no", "=out_trade_no", "=webhook_id")
    ordering = ("-last_received_at",)
    fields = (
        "webhook_id",
        "tx_no",
        "out_trade_no",
        "outcome",
        "reason",
        "deliveries",
        "first_received_at",
        "last_received_at",
        "related_links",
    )
    readonly_fields = ("related_links",)

    @admin.display(description="same case")
    def related_links(self, receipt):
        sent = admin_search_link(
            "admin:notifications_notification_changelist",
            q=receipt.webhook_id,
            text="the notification as sent",
        )
        if not receipt.tx_no:
            return sent
        return format_html("{} · {}", sent, _case_links(receipt.tx_no))
