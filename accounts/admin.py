"""Staff's view of balances, the ledger, recharges and notifications received.

All view-only: balances change only through ledger entries written by
``accounts.services``. Recharges stuck pending can be reconciled now, through the same
code path as the periodic job.
"""

from collections import Counter

from django.contrib import admin, messages
from django.utils import timezone

from core.admin import ReadOnlyAdminMixin, staff_action_log
from core.money import format_minor

from . import selectors, services
from .models import Account, InboundNotification, LedgerEntry, Recharge
from .payments_client import PaymentsApiError, PaymentsClient


@admin.register(Account)
class AccountAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Accounts and their balances; the balance is the sum of the ledger, never typed in."""

    list_display = ("account_no", "user", "balance_display", "created_at")
    list_select_related = ("user",)
    search_fields = ("=account_no", "user__username")
    ordering = ("-created_at",)
    fields = ("account_no", "user", "balance_display", "created_at")
    readonly_fields = ("balance_display",)

    @admin.display(description="balance", ordering="balance")
    def balance_display(self, account):
        return format_minor(account.balance, account.currency)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The ledger: append-only, so no add, change or delete here."""

    list_display = ("tx_no", "account", "amount_display", "source", "created_at")
    list_filter = ("source",)
    list_select_related = ("account",)
    search_fields = ("=tx_no", "=account__account_no")
    ordering = ("-created_at",)
    fields = ("tx_no", "account", "amount_display", "source", "created_at")
    readonly_fields = ("amount_display",)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, entry):
        return format_minor(entry.amount, entry.currency)


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
class RechargeAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Recharges this side started; "reconcile now" asks payments how each stands."""

    list_display = (
        "out_trade_no",
        "tx_no",
        "account",
        "amount_display",
        "status",
        "closed_by",
        "created_at",
        "last_checked_at",
    )
    list_filter = ("status", PendingTooLongFilter, "closed_by")
    list_select_related = ("account",)
    search_fields = ("=out_trade_no", "=tx_no", "=account__account_no")
    ordering = ("-created_at",)
    actions = ("reconcile_now",)
    fields = (
        "out_trade_no",
        "tx_no",
        "account",
        "amount_display",
        "status",
        "closed_by",
        "cashier_url",
        "created_at",
        "updated_at",
        "last_checked_at",
    )
    readonly_fields = ("amount_display",)

    @admin.display(description="amount", ordering="amount")
    def amount_display(self, recharge):
        return format_minor(recharge.amount, recharge.currency)

    @admin.action(permissions=["operate"], description="Reconcile now (ask payments)")
    def reconcile_now(self, request, queryset):
        def log(recharge, outcome):
            staff_action_log(
                modeladmin=self, request=request, obj=recharge, message=f"Reconcile now: {outcome}."
            )

        outcomes, failures = _reconcile(queryset.select_related("account"), log=log)
        if outcomes:
            summary = ", ".join(f"{count} {outcome}" for outcome, count in outcomes.items())
            self.message_user(request, f"Reconciled: {summary}.", messages.SUCCESS)
        for failure in failures:
            self.message_user(request, f"Not reconciled: {failure}", messages.ERROR)


def _reconcile(recharges, *, log=lambda recharge, outcome: None) -> tuple[Counter, list[str]]:
    """Reconcile each recharge; outcomes by name, and one line per recharge that failed.
    ``log(recharge, outcome)`` is called for each recharge tried.

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
            outcomes[outcome] += 1
            log(recharge, outcome)
    return outcomes, failures


@admin.register(InboundNotification)
class InboundNotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every verified notification received and what came of it; filter on "Rejected" to
    find those that disagreed with our recharge and were never applied."""

    list_display = (
        "webhook_id",
        "tx_no",
        "out_trade_no",
        "outcome",
        "reason",
        "deliveries",
        "first_received_at",
        "last_received_at",
    )
    list_filter = ("outcome",)
    search_fields = ("=tx_no", "=out_trade_no", "=webhook_id")
    ordering = ("-last_received_at",)
    fields = list_display
