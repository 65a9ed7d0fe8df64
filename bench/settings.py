"""Settings for the benchmark's processes: the project's own plus what the baselines need.

- ``django_webhook`` (a peer, danihodovic/django-webhook) fires on ``bench.PeerEvent`` and
  ``bench.SlowPeerEvent`` saves, through its own Celery task, routed to the ``bench`` queue;
- ``signal_webhooks`` (a peer, django-signal-webhooks) fires on ``bench.SignalPeerEvent``
  saves, from a thread it starts per save in the saving process (its default
  ``TASK_HANDLER``), each POSTing with httpx under ``asyncio.run``;
- ``bench`` itself: those models, the bare Celery tasks and the bare Django view.

Everything else, the middleware and every ``NOTIFY_*`` / ``ACCOUNTS_*`` setting included, is
``config.settings`` as the environment sets it, so "ours" runs exactly as deployed.
"""

from config.settings import *  # noqa: F403
from config.settings import CELERY_TASK_ROUTES, INSTALLED_APPS, LOGGING

INSTALLED_APPS = [*INSTALLED_APPS, "django_webhook", "signal_webhooks", "bench"]
ROOT_URLCONF = "bench.urls"

DJANGO_WEBHOOK = {
    "MODELS": ["bench.PeerEvent", "bench.SlowPeerEvent"],
    # The peer's defaults, spelled out: it logs every event row and caches the webhook lookup.
    "STORE_EVENTS": True,
    "USE_CACHE": True,
}

SIGNAL_WEBHOOKS = {
    # Its default handlers for the model (``...``): a thread per save, asyncio.run + httpx.
    "HOOKS": {"bench.models.SignalPeerEvent": ...},
    # Each event to the webhook it names, as a project with a webhook per merchant would
    # filter (the documented FILTER_KWARGS hook); otherwise every save goes to every hook.
    "FILTER_KWARGS": "bench.peers.signal_hook_filter",
}

CELERY_TASK_ROUTES = {
    **CELERY_TASK_ROUTES,
    "bench.bare_post": {"queue": "bench"},
    "bench.noop": {"queue": "bench"},
    "django_webhook.tasks.fire_webhook": {"queue": "bench"},
}

# httpx logs every request at INFO: django-signal-webhooks' thousands of POSTs would bury the
# tables the driver prints.
LOGGING = {**LOGGING, "loggers": {**LOGGING.get("loggers", {}), "httpx": {"level": "WARNING"}}}
