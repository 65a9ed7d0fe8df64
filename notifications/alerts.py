"""Telling people an endpoint was disabled: staff by email (Django's ``mail_admins``) and on
every admin page (``endpoint_banners``), the sender by an operational notification to its
ops URL (``NOTIFY_OPS_URL_RESOLVER``), as Svix sends ``endpoint.disabled`` and Stripe
emails."""

import logging

from django.core.mail import mail_admins
from django.utils.module_loading import import_string

from core.admin import when

from .conf import notify_settings
from .models import Endpoint

logger = logging.getLogger(__name__)

OPS_EVENT_TYPE = "endpoint.disabled"


def endpoint_disabled_announce(*, endpoint_id: int) -> None:
    """Email the admins and, when the sender has an ops URL, send it an ``endpoint.disabled``
    notification: ``{"origin", "sender_key", "failing_since", "disabled_at"}`` (ISO 8601)."""
    from .services import notification_create

    endpoint = Endpoint.objects.get(pk=endpoint_id)
    summary = (
        f"Notifications to {endpoint.origin} (sender {endpoint.sender_key}) failed without a "
        f"single success since {endpoint.failing_since:%Y-%m-%d %H:%M:%S %Z}; the endpoint is "
        "disabled and is sent nothing until staff re-enable it (admin: Endpoints, or "
        "`manage.py endpoint_recover`)."
    )
    logger.error("endpoint disabled: %s", summary)
    mail_admins(f"Endpoint disabled: {endpoint.origin}", summary, fail_silently=True)
    ops_url = _ops_url(endpoint.sender_key)
    if ops_url:
        notification_create(
            sender_key=endpoint.sender_key,
            subject=f"endpoint-{endpoint.pk}",
            event_type=OPS_EVENT_TYPE,
            target_url=ops_url,
            data={
                "origin": endpoint.origin,
                "sender_key": endpoint.sender_key,
                "failing_since": endpoint.failing_since.isoformat(),
                "disabled_at": endpoint.disabled_at.isoformat(),
            },
        )


def endpoint_banners() -> list[str]:
    """One line per disabled endpoint, for the top of every admin page (``ADMIN_BANNERS``)."""
    disabled = Endpoint.objects.filter(state=Endpoint.State.DISABLED).order_by("disabled_at")
    return [
        f"Endpoint {endpoint.origin} ({endpoint.sender_key}) is disabled since "
        f"{when(endpoint.disabled_at)}: its notifications are not being sent."
        for endpoint in disabled[:20]
    ]


def _ops_url(sender_key: str) -> str | None:
    if not notify_settings.OPS_URL_RESOLVER:
        return None
    return import_string(notify_settings.OPS_URL_RESOLVER)(sender_key)
