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
    # The schedule of queue targets (``queue://<name>``, notifications/queues.py): how long
    # to wait for a subscriber's acknowledgement before publishing again. "queue" is the
    # seeds' scheme-1 ladder, 1m, 5m, 10m, 30m, 1h, 2h, 5h, 10h; any RETRY_SCHEDULE value.
    "QUEUE_RETRY_SCHEDULE": "queue",
    # What every queue and exchange name of queue targets starts with: the project sets the
    # deployment's namespace where the broker has no key prefix of its own (RabbitMQ).
    "QUEUE_PREFIX": "",
    # Multiplies every delay and the window: 0.001 runs a 24 h schedule in about 90 s.
    "TIME_SCALE": 1.0,
    # ± fraction of each delay, so a receiver that comes back is not hit by everyone at once.
    "RETRY_JITTER": 0.1,
    # Seconds (unscaled) after creation when retries stop; None: the schedule's own window.
    "RETRY_WINDOW": None,
    # A claimed attempt older than this is presumed dead (worker killed) and is released. Far
    # above ATTEMPT_DEADLINE: a live attempt always ends, and is recorded, well before it.
    "CLAIM_TIMEOUT": 120.0,
    # Seconds between sweeps (beat): how late a retry may run, and how soon an attempt lost
    # with its worker is released. A tick costs the same at any table size (bench "scan cost").
    "SWEEP_INTERVAL": 2.0,
    # Orphaned claims released per sweep, at most.
    "SWEEP_BATCH": 500,
    # Seconds a delivered notification (and its attempts) is kept after its acknowledgement,
    # for staff and the merchant to look back on; then the prune task deletes it. Svix's and
    # django-webhook's default: 30 days. Undelivered and exhausted ones are never pruned.
    "RETENTION": 30 * 86400.0,
    # Seconds between prune runs (beat), notifications deleted per batch (one transaction,
    # a range of the (state, delivered_at) index: the same cost at any table size, bench
    # "prune"), and seconds a run may spend before it leaves the rest to the next one (far
    # below the task's soft time limit).
    "PRUNE_INTERVAL": 3600.0,
    "PRUNE_BATCH": 1000,
    "PRUNE_BUDGET": 30.0,
    # Wake-up messages a sweep sends at most when notifications are due (one per CLAIM_BATCH
    # due): each starts the dispatcher of one worker process, which then drains what it can.
    "SWEEP_WAKES": 16,
    # Seconds to connect, and for the whole attempt: connect, send, headers and the body as
    # far as it is read, whatever the receiver does (hang, drip one byte at a time, stream a
    # huge body). Payments receivers answer in well under a second; a slower one is failing.
    "CONNECT_TIMEOUT": 3.05,
    "ATTEMPT_DEADLINE": 10.0,
    # Requests in flight per worker process (the dispatcher's event loop). Delivery is waiting
    # on the network: a process holds hundreds of idle sockets for little memory and CPU.
    "MAX_IN_FLIGHT": 256,
    # Requests in flight per endpoint across every worker: the most a slow endpoint can hold,
    # and all a merchant's server is asked to take at once (bench "noisy neighbour").
    "ENDPOINT_MAX_IN_FLIGHT": 16,
    # Notifications claimed per database round trip, at most.
    "CLAIM_BATCH": 64,
    # Finished attempts are recorded together: at the latest this many seconds after the first
    # of them, or as soon as this many are waiting (one transaction instead of one each).
    "RECORD_DELAY": 0.02,
    "RECORD_BATCH": 64,
    # The circuit breaker (notifications/circuit.py): open after this many failures in a row,
    # or a failure rate of at least CIRCUIT_FAILURE_RATE over CIRCUIT_MIN_ATTEMPTS or more
    # attempts within CIRCUIT_WINDOW seconds (Convoy's defaults are of this size).
    "CIRCUIT_FAILURES": 5,
    "CIRCUIT_FAILURE_RATE": 0.5,
    "CIRCUIT_MIN_ATTEMPTS": 20,
    "CIRCUIT_WINDOW": 60.0,
    # Seconds an open circuit waits before one probe; doubled each time it opens again without
    # closing, up to CIRCUIT_OPEN_MAX. A dead endpoint then costs one request per 10 minutes.
    "CIRCUIT_OPEN_FOR": 30.0,
    "CIRCUIT_OPEN_MAX": 600.0,
    # An endpoint failing continuously (no success at all) this long is disabled: no more
    # attempts, staff alerted, the merchant's ops URL notified. Svix's default: 5 days.
    "ENDPOINT_DISABLE_AFTER": 5 * 86400.0,
    # Dotted path to ``f(sender_key) -> str | None``: where to send a sender's operational
    # notifications (endpoint.disabled), signed like the others. None: nowhere.
    "OPS_URL_RESOLVER": None,
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
