"""Production settings: ``DJANGO_SETTINGS_MODULE=config.settings.production``.

Everything from ``base``, then the values that must differ, and a refusal to start
(``ImproperlyConfigured``) on anything left at a development default or switching a
protection off (config/settings/checks.py): DEBUG, a development, short or repetitive secret
key, the fake demo API key or webhook secret in any spelling, no webhook secret, a ``*``
host, no or a short METRICS_TOKEN, a throttle switched off, a pending-recharge cap below 1,
an SSRF allow-list opening any address the guard refuses.
``python manage.py check --deploy`` is clean with these settings.
"""

from notifications.netguard import network_refusal

from .accounts import DEV_PAYMENTS_API_KEY, DEV_WEBHOOK_SECRET
from .base import *  # noqa: F403
from .base import DEV_SECRET_KEY
from .checks import production_refusals, refuse
from .env import env

# --- Core: no development defaults ----------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY")  # required: no default
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")  # required: no default
WHITENOISE_USE_FINDERS = False  # collectstatic fills STATIC_ROOT
# Named, not derived from the install path: two deployments on one Redis installed at the
# same path (/app in two containers) would otherwise share queues (config/settings/redis.py).
# (base has already given it to the cache and the broker: the same variable, so the same value).
DEPLOYMENT_NAMESPACE = env("DEPLOYMENT_NAMESPACE")  # required: no default

# --- HTTPS ----------------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (DJANGO_SECURE_PROXY_SSL_HEADER=1).
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"

# --- Security policy defaults that differ from development ----------------------------------
# No private destination is reachable by default; merchants' hosts must be named explicitly.
NOTIFY_ALLOWED_NETWORKS = env.list("NOTIFY_ALLOWED_NETWORKS", default=[])
PAYMENTS_DEFAULT_ALLOWED_HOSTS = env.list("PAYMENTS_DEFAULT_ALLOWED_HOSTS", default=[])


refuse(
    production_refusals(
        {
            "DEBUG": DEBUG,
            "SECRET_KEY": SECRET_KEY,
            "ALLOWED_HOSTS": ALLOWED_HOSTS,
            "ACCOUNTS_PAYMENTS_API_KEY": ACCOUNTS_PAYMENTS_API_KEY,  # noqa: F405
            "ACCOUNTS_WEBHOOK_SECRETS": ACCOUNTS_WEBHOOK_SECRETS,  # noqa: F405
            "PAYMENTS_CREATE_THROTTLE_RATE": PAYMENTS_CREATE_THROTTLE_RATE,  # noqa: F405
            "ACCOUNTS_NOTIFY_THROTTLE_RATE": ACCOUNTS_NOTIFY_THROTTLE_RATE,  # noqa: F405
            "ACCOUNTS_NOTIFY_FAILURE_THROTTLE_RATE": (
                ACCOUNTS_NOTIFY_FAILURE_THROTTLE_RATE  # noqa: F405
            ),
            "ACCOUNTS_RECHARGE_USER_RATE": ACCOUNTS_RECHARGE_USER_RATE,  # noqa: F405
            "ACCOUNTS_RECHARGE_PENDING_MAX": ACCOUNTS_RECHARGE_PENDING_MAX,  # noqa: F405
            "NOTIFY_ALLOWED_NETWORKS": NOTIFY_ALLOWED_NETWORKS,
            "METRICS_TOKEN": METRICS_TOKEN,  # noqa: F405
        },
        dev={
            "SECRET_KEY": DEV_SECRET_KEY,
            "API_KEY": DEV_PAYMENTS_API_KEY,
            "WEBHOOK_SECRET": DEV_WEBHOOK_SECRET,
        },
        network_refusal=network_refusal,
    )
)
