"""Which secrets sign a sender's notifications: ``NOTIFY_SECRET_RESOLVER``, remembered briefly.

The resolver (payments: a merchant lookup) was one query per delivery attempt, about a tenth
of an attempt's cost (bench "Where the CPU goes"). Each process keeps its answer for
``NOTIFY_SECRET_CACHE_SECONDS``, so a rolled secret signs from at most that long after the
roll; during a roll's overlap (24 h by default) the receiver accepts either secret anyway.
"""

import time

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .conf import notify_settings

# (resolver path, sender_key) -> (monotonic expiry, secrets); per process, shared by its
# threads (a dict's get and set are atomic).
_remembered: dict[tuple[str, str], tuple[float, list[str]]] = {}


def sender_secrets(sender_key: str) -> list[str]:
    """The ``whsec_`` secrets to sign ``sender_key``'s notifications with, newest first.

    Raises whatever the resolver raises for an unknown sender (payments:
    ``Merchant.DoesNotExist``); nothing is remembered then. Raises ``ImproperlyConfigured``
    when the project names no resolver.
    """
    if not notify_settings.SECRET_RESOLVER:
        raise ImproperlyConfigured("NOTIFY_SECRET_RESOLVER names no function (see conf.py)")
    key = (notify_settings.SECRET_RESOLVER, sender_key)
    now = time.monotonic()
    remembered = _remembered.get(key)
    if remembered is not None and remembered[0] > now:
        return remembered[1]
    secrets = import_string(notify_settings.SECRET_RESOLVER)(sender_key)
    if notify_settings.SECRET_CACHE_SECONDS > 0:
        _remembered[key] = (now + notify_settings.SECRET_CACHE_SECONDS, secrets)
    return secrets
