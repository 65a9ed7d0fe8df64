"""Staff's view of the outbox: every notification, every attempt, and "resend now".

View-only: a notification moves only through ``notifications.services``, which the action
calls. Generic like the rest of this app: it knows subjects, not what they are.
"""

from django.contrib import admin, messages

from core.admin import ReadOnlyAdminMixin, staff_action_log

from . import services
from .models import DeliveryAttempt, Notification


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
    list_filter = ("state", "event_type")
    search_fields = ("=subject",)
    search_help_text = "Exact subject (for payments: the order's tx_no)."
    ordering = ("-created_at",)
    actions = ("resend_now",)
    inlines = (DeliveryAttemptInline,)
    fields = (
        "webhook_id",
        "sender_key",
        "subject",
        "event_type",
        "target_url",
        "state",
        "attempt_count",
        "created_at",
        "next_attempt_at",
        "broker_eta",
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
