"""The notify endpoint's throttles, per client address, one budget for notifications whose
signature verifies and one for requests that fail: junk (unsigned, forged, stale, not JSON)
spends only its own, so it cannot get genuine notifications refused.

The address is ``REMOTE_ADDR`` unless ``DJANGO_NUM_PROXIES`` trusted proxies add
``X-Forwarded-For`` (DRF's ``NUM_PROXIES``).
"""

from django.conf import settings
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle

from core.throttling import throttle_hit


def notify_throttle(request, *, verified: bool) -> None:
    """Count ``request`` against its address's budget: ``ACCOUNTS_NOTIFY_THROTTLE_RATE`` when
    its signature ``verified``, else ``ACCOUNTS_NOTIFY_FAILURE_THROTTLE_RATE``. Raises
    ``Throttled`` (429 with Retry-After, in seconds) once that budget is spent."""
    if verified:
        scope, rate, detail = "notify", settings.ACCOUNTS_NOTIFY_THROTTLE_RATE, None
    else:
        scope, rate = "notify_failure", settings.ACCOUNTS_NOTIFY_FAILURE_THROTTLE_RATE
        detail = "Too many requests failing verification from this address."
    address = BaseThrottle().get_ident(request)
    wait = throttle_hit(key=f"throttle_{scope}_{address}", rate=rate, scope=scope)
    if wait is not None:
        raise Throttled(wait=wait, detail=detail)
