"""``{% notifications_dashboard %}``: delivery over the last ``DASHBOARD_HOURS`` hours for
staff (the admin index, core/templates/admin/index.html), as inline SVG charts drawn on the
server (no script, no CDN) and the same figures as text.

Shown only to staff who may view notifications; the figures are notifications/stats.py's.
"""

import logging
import math

from django import template
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from notifications import stats
from notifications.models import Endpoint

register = template.Library()
logger = logging.getLogger(__name__)

# Chart geometry, in SVG user units: one bar slot per hour.
SLOT, HEIGHT = 30, 120
# The latency chart's vertical scale: logarithmic from the first bucket bound to the last.
LATENCY_LOW, LATENCY_HIGH = stats.LATENCY_BUCKETS_MS[0], stats.LATENCY_BUCKETS_MS[-1]
PERCENTILES = (50, 95, 99)


@register.inclusion_tag("admin/notifications/dashboard.html", takes_context=True)
def notifications_dashboard(context) -> dict:
    """The dashboard's context, or ``{"shown": False}`` for a user who may not view
    notifications."""
    request = context.get("request")
    if request is None or not request.user.has_perm("notifications.view_notification"):
        return {"shown": False}
    now = timezone.now()
    hours = hours_cached(now)
    endpoints = stats.endpoints_by_state()
    backlog = stats.notifications_backlog(now=now)
    return {
        "shown": True,
        "hours": hours,
        "backlog": backlog,
        "oldest_due": age_text(backlog.oldest_due_age_seconds),
        "endpoints": [(label, endpoints[state]) for state, label in Endpoint.State.choices],
        "totals": _totals(hours),
        "width": SLOT * len(hours),
        "height": HEIGHT,
        "bars": _success_bars(hours),
        "lines": _latency_lines(hours),
        "ticks": _latency_ticks(),
        "hour_labels": _hour_labels(hours),
    }


def hours_cached(now) -> list[stats.Hour]:
    """``stats.attempts_by_hour`` for the dashboard, computed at most once per
    ``DASHBOARD_CACHE_SECONDS`` per hour (0: every time): its query reads every attempt of
    the window, which at hundreds of attempts a second takes seconds, too long for each
    admin index load. The backlog and endpoint counts stay live (index counts). A cache that
    is down costs the computation, never the page."""
    seconds = settings.DASHBOARD_CACHE_SECONDS
    # v1: the pickled ``stats.Hour``'s shape; a release that changes it bumps the version.
    key = f"notifications:dashboard:v1:{settings.DASHBOARD_HOURS}:{now:%Y%m%d%H}"
    hours = _cache_call(cache.get, key) if seconds > 0 else None
    if hours is None:
        hours = stats.attempts_by_hour(now=now, hours=settings.DASHBOARD_HOURS)
        if seconds > 0:
            _cache_call(cache.set, key, hours, seconds)
    return hours


def _cache_call(method, *args):
    try:
        return method(*args)
    except Exception:  # the configured backend's own errors (any backend may be)
        logger.warning("dashboard cache unavailable; figures computed", exc_info=True)
        return None


def age_text(seconds: float) -> str:
    """A wait as people read it: ``45 s``, ``12 min``, ``14 h 54 min``, ``3 d 2 h``."""
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        return f"{hours} h {minutes % 60} min"
    return f"{days} d {hours % 24} h"


def _totals(hours: list[stats.Hour]) -> dict:
    attempts = sum(hour.attempts for hour in hours)
    succeeded = sum(hour.succeeded for hour in hours)
    return {
        "attempts": attempts,
        "succeeded": succeeded,
        "success_percent": round(100 * succeeded / attempts, 1) if attempts else None,
    }


def _success_bars(hours: list[stats.Hour]) -> list[dict]:
    """One bar per hour with attempts: its height the success rate, its title the figures."""
    bars = []
    for i, hour in enumerate(hours):
        if hour.success_rate is None:
            continue
        height = max(1.0, hour.success_rate * HEIGHT)
        bars.append(
            {
                "x": i * SLOT + 3,
                "y": HEIGHT - height,
                "width": SLOT - 6,
                "height": height,
                "failing": hour.success_rate < 0.95,
                "title": f"{hour.start:%H}:00 UTC: {100 * hour.success_rate:.1f}% of "
                f"{hour.attempts} attempts acknowledged",
            }
        )
    return bars


def _latency_y(ms: float) -> float:
    ms = min(max(ms, LATENCY_LOW), LATENCY_HIGH)
    share = math.log10(ms / LATENCY_LOW) / math.log10(LATENCY_HIGH / LATENCY_LOW)
    return round(HEIGHT - share * HEIGHT, 1)


def _latency_lines(hours: list[stats.Hour]) -> list[dict]:
    """A polyline per percentile through the hours that had attempts."""
    lines = []
    for q in PERCENTILES:
        points = [
            f"{i * SLOT + SLOT / 2},{_latency_y(hour.latency_ms[q])}"
            for i, hour in enumerate(hours)
            if hour.latency_ms is not None
        ]
        lines.append({"q": q, "points": " ".join(points)})
    return lines


def _latency_ticks() -> list[dict]:
    return [
        {"y": _latency_y(ms), "label": f"{ms} ms" if ms < 1000 else f"{ms // 1000} s"}
        for ms in (10, 100, 1000, 10000)
    ]


def _hour_labels(hours: list[stats.Hour]) -> list[dict]:
    """Every third hour's label under the charts."""
    return [
        {"x": i * SLOT + SLOT / 2, "label": f"{hour.start:%H}h"}
        for i, hour in enumerate(hours)
        if i % 3 == 0
    ]
