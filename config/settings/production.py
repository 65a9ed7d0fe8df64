"""Production settings: ``DJANGO_SETTINGS_MODULE=config.settings.production``.

Everything from ``base``, then the values that must differ, and a refusal to start
(``ImproperlyConfigured``) on anything left at a development default: DEBUG, the dev secret
key, the fake demo API key or webhook secret, an SSRF allow-list opening private ranges.
``python manage.py check --deploy`` is clean with these settings.
"""

import ipaddress

from django.core.exceptions import ImproperlyConfigured

from .accounts import DEV_PAYMENTS_API_KEY, DEV_WEBHOOK_SECRET
from .base import *  # noqa: F403
from .base import DEV_SECRET_KEY
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


def _refuse(problem: str) -> None:
    raise ImproperlyConfigured(f"config.settings.production refuses to start: {problem}")


def _opens_private_range(cidr: str) -> bool:
    """True when ``cidr`` overlaps any loopback, private, link-local, shared, multicast or
    otherwise non-public range (which the SSRF guard exists to keep closed)."""
    network = ipaddress.ip_network(cidr.strip(), strict=False)
    first, last = network.network_address, network.broadcast_address
    return not (first.is_global and last.is_global and network.prefixlen > 0) or any(
        network.overlaps(blocked) for blocked in _NON_PUBLIC if blocked.version == network.version
    )


_NON_PUBLIC = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/127",
        "::ffff:0:0/96",
        "64:ff9b::/96",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
]

if DEBUG:
    _refuse("DEBUG is on (DJANGO_DEBUG)")
if SECRET_KEY == DEV_SECRET_KEY or SECRET_KEY.startswith("django-insecure") or len(SECRET_KEY) < 50:
    _refuse("DJANGO_SECRET_KEY is the development key or too short (50+ random characters)")
if ACCOUNTS_PAYMENTS_API_KEY == DEV_PAYMENTS_API_KEY:  # noqa: F405
    _refuse("ACCOUNTS_PAYMENTS_API_KEY is the development demo key")
if DEV_WEBHOOK_SECRET in ACCOUNTS_WEBHOOK_SECRETS:  # noqa: F405
    _refuse("ACCOUNTS_WEBHOOK_SECRETS contains the development demo secret")
for _cidr in NOTIFY_ALLOWED_NETWORKS:
    try:
        _opens = _opens_private_range(_cidr)
    except ValueError:
        _refuse(f"NOTIFY_ALLOWED_NETWORKS has an invalid network {_cidr!r}")
    if _opens:
        _refuse(
            f"NOTIFY_ALLOWED_NETWORKS opens a private, loopback or link-local range ({_cidr}); "
            "notifications to internal addresses are for development only"
        )
