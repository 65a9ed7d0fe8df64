"""The merchant API's throttle."""

from core.throttling import SettingsRateThrottle


class RechargeCreateThrottle(SettingsRateThrottle):
    """Order creation, per merchant: ``PAYMENTS_CREATE_THROTTLE_RATE``."""

    scope = "recharge_create"
    rate_setting = "PAYMENTS_CREATE_THROTTLE_RATE"

    def get_cache_key(self, request, view):
        merchant = getattr(request, "user", None)
        ident = merchant.pk if merchant is not None else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
