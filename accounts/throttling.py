"""The notify endpoint's throttle."""

from core.throttling import SettingsRateThrottle


class NotifyThrottle(SettingsRateThrottle):
    """The notify endpoint, per client address: ``ACCOUNTS_NOTIFY_THROTTLE_RATE``. The
    address is ``REMOTE_ADDR`` unless ``DJANGO_NUM_PROXIES`` trusted proxies add
    ``X-Forwarded-For`` (DRF's ``NUM_PROXIES``)."""

    scope = "notify"
    rate_setting = "ACCOUNTS_NOTIFY_THROTTLE_RATE"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
