"""Staff's view of the outbox: every notification and attempt with "resend now", and every
endpoint's health with "re-enable" and "recover".

View-only: rows move only through ``notifications.services``, which the actions call.
Generic like the rest of this app: it knows subjects and origins, not what they are.
"""

import json
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join

from core.admin import (
    PageAction,
    PageActionsMixin,
    ReadOnlyAdminMixin,
    admin_find_link,
    staff_action_log,
    when,
)
from core.admin_search import ExactIndexedSearchMixin

from . import selectors, services
from .models import Endpoint, Notification


class EndpointFilter(admin.SimpleListFilter):
    """Notifications of one endpoint: those with the most undelivered are offered."""

    title = "endpoint"
    parameter_name = "endpoint"

    def lookups(self, request, model_admin):
        offered = list(selectors.endpoints_undelivered_report()[:20])
        chosen = self.chosen_id()
        if chosen and all(str(e.pk) != chosen for e in offered):
            offered += list(Endpoint.objects.filter(pk=chosen))
        return [(str(endpoint.pk), endpoint.origin) for endpoint in offered]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        chosen = self.chosen_id()
        return queryset.filter(endpoint_id=chosen) if chosen else queryset.none()

    def chosen_id(self) -> str | None:
        """The chosen endpoint's id, or None when it is not one (``"²".isdigit()`` is True,
        yet ``int()`` refuses it: ASCII digits only)."""
        chosen = self.value() or ""
        return chosen if chosen.isascii() and chosen.isdigit() else None


class UndeliveredFilter(admin.SimpleListFilter):
    """Not acknowledged by the receiver: pending, in flight or exhausted."""

    title = "delivery"
    parameter_name = "undelivered"

    def lookups(self, request, model_admin):
        return [("yes", "Not delivered (pending, in flight, exhausted)")]

    def queryset(self, request, queryset):
        if self.value() != "yes":
            return queryset
        return queryset.filter(state__in=Notification.UNDELIVERED_STATES)


@admin.register(Notification)
class NotificationAdmin(
    ExactIndexedSearchMixin, PageActionsMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    """Notifications, view-only: every attempt with the request as sent and the response, as
    Stripe's and Svix's dashboards show them, and "Resend now" on the page and in the list."""

    # Narrow enough for 1280 px: the event type and the URL are on the page. No filter by
    # event type: its choices (SELECT DISTINCT over every notification) read the whole
    # table on each load of this list.
    list_display = (
        "short_webhook_id",
        "subject",
        "state",
        "attempts",
        "last_status",
        "next_attempt_at",
    )
    list_filter = ("state", UndeliveredFilter, EndpointFilter)
    search_fields = ("=subject",)
    search_help_text = "Exact webhook-id (msg_…) or subject (for payments: the order's tx_no)."
    ordering = ("-created_at",)
    actions = ("resend_now",)
    page_actions = (PageAction("resend", "Resend now"),)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "webhook_id",
                    "subject_links",
                    "event_type",
                    "target_url",
                    "endpoint_link",
                    "state",
                    "attempt_count",
                    "last_status_code",
                    "last_error",
                )
            },
        ),
        (
            "Timeline",
            {"fields": ("created_at", "next_attempt_at", "claimed_at", "delivered_at")},
        ),
        ("Request body, as sent on every attempt", {"fields": ("body_pretty",)}),
        ("Attempts: the request headers sent and the response", {"fields": ("attempts_log",)}),
    )
    readonly_fields = ("webhook_id", "subject_links", "endpoint_link", "body_pretty")

    def get_search_results(self, request, queryset, search_term):
        notification_id = selectors.notification_id_from_webhook_id(search_term.strip())
        if notification_id is not None:
            return queryset.filter(pk=notification_id), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="webhook-id")
    def short_webhook_id(self, notification):
        """Its first characters (the whole id is on its page, and Find takes it)."""
        return f"{notification.webhook_id[:12]}…"

    @admin.display(description="attempts", ordering="attempt_count")
    def attempts(self, notification):
        return notification.attempt_count

    @admin.display(description="last status", ordering="last_status_code")
    def last_status(self, notification):
        return notification.last_status_code or notification.last_error[:24] or "—"

    @admin.display(description="subject")
    def subject_links(self, notification):
        find = admin_find_link(q=notification.subject, text="everything about it")
        return format_html("{} ({})", notification.subject, find)

    @admin.display(description="endpoint")
    def endpoint_link(self, notification):
        endpoint = notification.endpoint
        if endpoint is None:
            return "—"
        url = reverse("admin:notifications_endpoint_change", args=[endpoint.pk])
        return format_html(
            '<a href="{}">{}</a> · {}', url, endpoint.origin, endpoint.get_state_display()
        )

    @admin.display(description="body")
    def body_pretty(self, notification):
        return format_html('<pre class="frozen-body">{}</pre>', _pretty_json(notification.body))

    @admin.display(description="attempts")
    def attempts_log(self, notification):
        return attempts_table(notification.attempts.all())

    @admin.action(permissions=["operate"], description="Resend now")
    def resend_now(self, request, queryset):
        resent = sum(self._resend(request, notification) for notification in queryset)
        skipped = queryset.count() - resent
        self.message_user(
            request,
            f"Resend queued for {resent} notification(s), due now; skipped {skipped} "
            "(an attempt in flight).",
            messages.SUCCESS if resent else messages.WARNING,
        )

    def page_resend(self, request, notification):
        """The notification page's "Resend now"."""
        if self._resend(request, notification):
            message = (
                "Resend queued: the attempt is due now; a worker sends it within seconds "
                "(unless its endpoint is failing or disabled) and it appears below."
            )
            self.message_user(request, message, messages.SUCCESS)
        else:
            message = "Not resent: an attempt is in flight; look again shortly."
            self.message_user(request, message, messages.WARNING)

    def _resend(self, request, notification) -> bool:
        scheduled = services.notification_resend(notification_id=notification.pk)
        outcome = "scheduled" if scheduled else "skipped (an attempt in flight)"
        staff_action_log(
            modeladmin=self, request=request, obj=notification, message=f"Resend now: {outcome}."
        )
        return scheduled


def attempts_table(attempts) -> str:
    """Every attempt as an HTML table, all escaped: number, start to the second, duration,
    the request headers sent, and the response (status, error, excerpt)."""
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td><pre>{}</pre></td><td>{}</td><td>{}</td>"
        "<td><pre>{}</pre></td></tr>",
        (
            (
                attempt.number,
                when(attempt.started_at),
                f"{attempt.duration_ms} ms",
                "\n".join(f"{k}: {v}" for k, v in attempt.request_headers.items()) or "—",
                attempt.status_code or "—",
                attempt.error or "—",
                attempt.response_excerpt or "—",
            )
            for attempt in attempts
        ),
    )
    return format_html(
        '<table class="attempts"><thead><tr><th>#</th><th>Started</th><th>Took</th>'
        "<th>Request headers</th><th>Status</th><th>Error</th><th>Response excerpt</th>"
        "</tr></thead><tbody>{}</tbody></table>",
        rows or format_html('<tr><td colspan="7">{}</td></tr>', "No attempt yet."),
    )


def _pretty_json(body: str) -> str:
    """``body`` indented for reading; as stored when it is not JSON."""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


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
        return selectors.endpoints_with_undelivered(super().get_queryset(request))

    @admin.display(description="success rate (latest window · all time)")
    def success_rate(self, endpoint):
        recent = selectors.endpoint_recent_success_rate(endpoint)
        lifetime = selectors.endpoint_success_rate(endpoint)
        if recent is not None:
            since = formats.date_format(endpoint.window_started_at, "DATETIME_FORMAT")
            recent = f"{recent:.1%} of {endpoint.window_attempts} from {since}"
        lifetime = None if lifetime is None else f"{lifetime:.1%} of {endpoint.attempts_total}"
        return f"{recent or '—'} · {lifetime or '—'}"

    @admin.display(description="undelivered", ordering="undelivered")
    def undelivered(self, endpoint):
        count = endpoint.undelivered
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
            message = f"Recovered since {when(since)}: {count} resent."
            staff_action_log(modeladmin=self, request=request, obj=endpoint, message=message)
        self.message_user(
            request,
            f"Re-enabled {queryset.count()} endpoint(s) and scheduled {total} undelivered "
            "notification(s) to be sent again now.",
            messages.SUCCESS,
        )
        return None
