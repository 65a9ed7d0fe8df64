"""The notifications app's own settings: every knob, its default and the reason for it.

A project changes a knob by setting ``NOTIFY_<NAME>`` in its Django settings; anything left
unset falls back to ``DEFAULTS``. Read them through ``notify_settings`` at call time (never at
import), so a changed setting (a test's ``settings`` fixture) applies at once. The pattern is
django-webhook's ``settings.py``: the app can be lifted into another project with its knobs.
"""

from django.conf import settings

DEFAULTS = {
    # Retry schedule: "exponential" (15 s doubling to 4 h, 15 attempts in ~20 h inside 24 h),
    # "wechat" (WeChat Pay's ladder) or an explicit ladder such as "15s,30s,3m,1h"
    # (notifications/retry.py).
    "RETRY_SCHEDULE": "exponential",
    # Multiplies every delay and the window: 0.001 runs a 24 h schedule in about 90 s.
    "TIME_SCALE": 1.0,
    # ± fraction of each delay, so a receiver that comes back is not hit by everyone at once.
    "RETRY_JITTER": 0.1,
    # Seconds (unscaled) after creation when retries stop; None: the schedule's own window.
    "RETRY_WINDOW": None,
    # Delays up to this many seconds are Celery countdowns; longer ones wait in the database
    # for the sweeper. Small, because a countdown message is held by the broker and by the
    # worker until it is due (bench "retry storm": both grew with the number waiting at 300 s)
    # and Redis redelivers a message held past its visibility timeout (kombu issue 337).
    "COUNTDOWN_CAP": 5.0,
    # A claimed attempt older than this is presumed dead (worker killed) and is released.
    "CLAIM_TIMEOUT": 120.0,
    # A task message expected to have run this long ago but whose row is still due is re-sent.
    "REQUEUE_AFTER": 60.0,
    # Seconds between sweeps (beat): how late a retry past the cap may run. A tick costs the
    # same at any table size (bench "scan cost").
    "SWEEP_INTERVAL": 2.0,
    # At most this many messages in the deliveries' queue after a sweep: enough to keep the
    # workers busy until the next one, and all a backlog of any size costs the broker (bench
    # "retry storm": ~0.9 KiB of Redis per message). Raise it with the workers.
    "SWEEP_BATCH": 500,
    # Seconds to connect and to wait for each read of the reply.
    "CONNECT_TIMEOUT": 3.05,
    "READ_TIMEOUT": 10.0,
    # Bytes of the reply kept on the attempt row (and read at all).
    "RESPONSE_EXCERPT_BYTES": 1024,
    # Dotted path to ``f(sender_key) -> list[str]``, the whsec_ secrets to sign with, newest
    # first. No default: the app cannot know where a project keeps its senders' secrets.
    "SECRET_RESOLVER": None,
    # Seconds a worker process reuses the resolver's answer (notifications/secrets.py); 0: ask
    # on every attempt. A rolled secret signs at most this long after the roll.
    "SECRET_CACHE_SECONDS": 10.0,
    # CIDRs notifications may reach although not publicly routable (the SSRF guard's
    # allow-list, notifications/netguard.py). None by default: a merchant's URL must never
    # reach into our own network.
    "ALLOWED_NETWORKS": [],
}


class NotifySettings:
    """Attribute access to the knobs: ``notify_settings.SWEEP_INTERVAL`` is the project's
    ``NOTIFY_SWEEP_INTERVAL`` or the default. Raises AttributeError for an unknown name."""

    def __getattr__(self, name: str):
        if name not in DEFAULTS:
            raise AttributeError(f"no notifications setting {name!r}")
        return getattr(settings, f"NOTIFY_{name}", DEFAULTS[name])


notify_settings = NotifySettings()
