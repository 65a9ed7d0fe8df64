"""Staff's view of the outbox: every notification and attempt with "resend now", and every
endpoint's health with "re-enable" and "recover".

View-only: rows move only through ``notifications.services``, which the actions call.
Generic like the rest of this app: it knows subjects and origins, not what they are.
"""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from core.admin import ReadOnlyAdminMixin, staff_action_log

from . import selectors, services
from .models import DeliveryAttempt, Endpoint, Notification


class DeliveryAttemptInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Every attempt of a notification, oldest first."""

    model = DeliveryAttempt
    fields = (
        "number",
        "started_at",
        "duration_ms",
        "status_code",
        "succeeded",
        "error",
        "response_excerpt",
    )
    readonly_fields = fields
    extra = 0


class EndpointFilter(admin.SimpleListFilter):
    """Notifications of one endpoint: those with the most undelivered are offered."""

    title = "endpoint"
    parameter_name = "endpoint"

    def lookups(self, request, model_admin):
        offered = list(selectors.endpoints_undelivered_report()[:20])
        chosen = self.value()
        if chosen and chosen.isdigit() and all(str(e.pk) != chosen for e in offered):
            offered += list(Endpoint.objects.filter(pk=chosen))
        return [(str(endpoint.pk), endpoint.origin) for endpoint in offered]

    def queryset(self, request, queryset):
        chosen = self.value()
        if not chosen:
            return queryset
        return queryset.filter(endpoint_id=chosen) if chosen.isdigit() else queryset.none()


class UndeliveredFilter(admin.SimpleListFilter):
    """Not acknowledged by the receiver: pending, in flight or exhausted."""

    title = "delivery"
    parameter_name = "undelivered"

    def lookups(self, request, model_admin):
        return [("yes", "Not delivered (pending, in flight, exhausted)")]

    def queryset(self, request, queryset):
        if self.value() != "yes":
            return queryset
        return queryset.exclude(state=Notification.State.DELIVERED)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Notifications, view-only, with their attempts inline."""

    list_display = (
        "webhook_id",
        "subject",
        "event_type",
        "target_url",
        "state",
        "attempt_count",
        "next_attempt_at",
        "last_status_code",
    )
    list_filter = ("state", UndeliveredFilter, "event_type", EndpointFilter)
    search_fields = ("=subject",)
    search_help_text = "Exact subject (for payments: the order's tx_no)."
    ordering = ("-created_at",)
    actions = ("resend_now",)
    inlines = (DeliveryAttemptInline,)
    fields = (
        "webhook_id",
        "sender_key",
        "endpoint",
        "subject",
        "event_type",
        "target_url",
        "state",
        "attempt_count",
        "created_at",
        "next_attempt_at",
        "claimed_at",
        "delivered_at",
        "last_status_code",
        "last_error",
        "body",
    )
    readonly_fields = ("webhook_id",)

    @admin.action(permissions=["operate"], description="Resend now")
    def resend_now(self, request, queryset):
        resent = 0
        for notification in queryset:
            scheduled = services.notification_resend(notification_id=notification.pk)
            resent += scheduled
            outcome = "scheduled" if scheduled else "skipped (an attempt in flight)"
            staff_action_log(
                modeladmin=self,
                request=request,
                obj=notification,
                message=f"Resend now: {outcome}.",
            )
        skipped = queryset.count() - resent
        self.message_user(
            request,
            f"Scheduled {resent} notification(s) for an immediate attempt; skipped {skipped} "
            "(an attempt in flight).",
            messages.SUCCESS if resent else messages.WARNING,
        )


class RecoverForm(forms.Form):
    """When to resend from: every undelivered notification created since then."""

    since = forms.DateTimeField(
        help_text="YYYY-MM-DD HH:MM (UTC): notifications created since then that the endpoint "
        "has not acknowledged are sent again."
    )


@admin.register(Endpoint)
class EndpointAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Where notifications go, and how each destination is doing: its circuit, its success
    rate, what it has not acknowledged. Staff re-enable an endpoint, or recover it: re-enable
    and resend everything undelivered since a time (Svix's recover)."""

    list_display = (
        "origin",
        "sender_key",
        "state",
        "success_rate",
        "consecutive_failures",
        "failing_since",
        "retry_at",
        "undelivered",
        "last_success_at",
    )
    list_filter = ("state",)
    search_fields = ("origin", "=sender_key")
    ordering = ("origin",)
    actions = ("reenable", "recover")
    readonly_fields = ("success_rate", "undelivered")

    def get_queryset(self, request):
        undelivered = ~Q(notifications__state=Notification.State.DELIVERED)
        return (
            super()
            .get_queryset(request)
            .annotate(undelivered_count=Count("notifications", filter=undelivered))
        )

    @admin.display(description="success rate")
    def success_rate(self, endpoint):
        if not endpoint.attempts_total:
            return "—"
        succeeded = endpoint.attempts_total - endpoint.failures_total
        return f"{succeeded / endpoint.attempts_total:.1%} of {endpoint.attempts_total}"

    @admin.display(description="undelivered", ordering="undelivered_count")
    def undelivered(self, endpoint):
        count = getattr(endpoint, "undelivered_count", None)
        if count is None:
            count = selectors.notifications_undelivered(endpoint_id=endpoint.pk).count()
        url = reverse("admin:notifications_notification_changelist")
        return format_html(
            '<a href="{}?endpoint={}&amp;undelivered=yes">{}</a>', url, endpoint.pk, count
        )

    @admin.action(permissions=["operate"], description="Re-enable (close the circuit)")
    def reenable(self, request, queryset):
        for endpoint in queryset:
            services.endpoint_enable(endpoint_id=endpoint.pk)
            staff_action_log(modeladmin=self, request=request, obj=endpoint, message="Re-enabled.")
        self.message_user(
            request,
            f"Re-enabled {queryset.count()} endpoint(s): their due notifications go now.",
            messages.SUCCESS,
        )

    @admin.action(
        permissions=["operate"], description="Recover: re-enable and resend undelivered since…"
    )
    def recover(self, request, queryset):
        form = RecoverForm(request.POST if "since" in request.POST else None)
        if not form.is_valid():
            form.initial.setdefault("since", timezone.now() - timedelta(days=1))
            context = {
                **self.admin_site.each_context(request),
                "title": "Recover endpoints",
                "form": form,
                "endpoints": queryset,
                "opts": self.opts,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/notifications/endpoint/recover.html", context)
        since = form.cleaned_data["since"]
        total = 0
        for endpoint in queryset:
            count = services.endpoint_recover(endpoint_id=endpoint.pk, since=since)
            total += count
            message = f"Recovered since {since:%Y-%m-%d %H:%M %Z}: {count} resent."
            staff_action_log(modeladmin=self, request=request, obj=endpoint, message=message)
        self.message_user(
            request,
            f"Re-enabled {queryset.count()} endpoint(s) and scheduled {total} undelivered "
            "notification(s) to be sent again now.",
            messages.SUCCESS,
        )
        return None
