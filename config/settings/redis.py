"""Redis: the Celery broker and the cache (the API throttles count there), and the namespace
that keeps this deployment's keys apart from any other's on the same Redis."""

import hashlib
import re

from django.core.exceptions import ImproperlyConfigured

from .env import BASE_DIR, env

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")

# Every key this deployment writes to Redis (task queues and the broker's bookkeeping, the
# control and event channels, the cache) starts with this, so two deployments on one Redis
# (staging and production, two checkouts on a laptop) never take each other's messages.
# Development: derived from the checkout's path, so every process started from one checkout
# agrees and two checkouts differ. Production requires it (config.settings.production).
DEPLOYMENT_NAMESPACE = env(
    "DEPLOYMENT_NAMESPACE",
    default="recharge-" + hashlib.sha256(str(BASE_DIR).encode()).hexdigest()[:8],
)
if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", DEPLOYMENT_NAMESPACE):
    raise ImproperlyConfigured(
        "DEPLOYMENT_NAMESPACE must be 1-40 letters, digits, '_', '.' or '-'; "
        f"got {DEPLOYMENT_NAMESPACE!r}"
    )

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": DEPLOYMENT_NAMESPACE,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}
