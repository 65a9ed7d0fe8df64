"""Rate limits whose rates are Django settings, counted in the shared cache (Redis).

A fixed-window counter (one Redis round trip per request: ``SET NX EX`` and ``INCR`` in one
``MULTI``) rather than DRF's default sliding log, which stores every request's timestamp and
rewrites the whole list on each request. ``throttle_hit`` is the counter, for any caller;
``SettingsRateThrottle`` puts it behind DRF's throttle interface.
The cache is shared by every gunicorn worker (``CACHES`` on ``REDIS_URL``). When the cache
cannot be reached the request is let through and a warning logged: an outage of the
throttle's store must not become an outage of what it guards.
"""

import logging
import time

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


def throttle_hit(*, key: str, rate: str | None, scope: str) -> float | None:
    """Count one request under ``key`` in the current window of ``rate`` (``"600/min"``;
    None or empty: unlimited). Returns None when the request is within the rate, else the
    seconds until the window ends (a Retry-After). ``scope`` names the limit in the warning
    logged when the cache is unavailable (the request is then let through)."""
    if not rate:
        return None
    limit, duration = SimpleRateThrottle.parse_rate(None, rate)  # DRF's reading; uses no self
    now = time.time()
    window_start = int(now // duration) * duration
    try:
        count = _count(f"{key}_{window_start}", duration=duration)
    except Exception as exc:  # any cache failure: fail open, loudly
        logger.warning("throttle %s not applied, cache unavailable: %s", scope, exc)
        return None
    return None if count <= limit else max(0.0, window_start + duration - now)


class SettingsRateThrottle(SimpleRateThrottle):
    """``rate_setting`` names the Django setting holding the rate (``"600/min"``; None or
    empty: unlimited). Read per request, so a changed setting applies at once."""

    rate_setting = ""

    def get_rate(self):
        return getattr(settings, self.rate_setting, None) or None

    def allow_request(self, request, view):
        key = self.get_cache_key(request, view) if self.rate else None
        self.wait_seconds = (
            None if key is None else throttle_hit(key=key, rate=self.rate, scope=self.scope)
        )
        return self.wait_seconds is None

    def wait(self):
        return self.wait_seconds


def _count(window_key: str, *, duration: int) -> int:
    """This window's count after adding the current request."""
    backend = caches[DEFAULT_CACHE_ALIAS]
    if not isinstance(backend, RedisCache):  # any other backend: its own add + incr
        backend.add(window_key, 0, timeout=duration + 1)
        try:
            return backend.incr(window_key)
        except ValueError:  # the key expired between add and incr
            backend.add(window_key, 1, timeout=duration + 1)
            return 1
    key = backend.make_and_validate_key(window_key)
    # RedisCache.add + incr would be three round trips (incr checks EXISTS first); its
    # pooled client does the same in one, atomically, so the key cannot expire between
    # creation and increment and linger without a TTL.
    client = backend._cache.get_client(key, write=True)
    pipe = client.pipeline(transaction=True)
    pipe.set(key, 0, ex=duration + 1, nx=True)
    pipe.incr(key)
    return pipe.execute()[1]
