"""Settings for the benchmark's processes: the project's own plus what the baselines need.

- ``django_webhook`` (the peer, danihodovic/django-webhook) fires on ``bench.PeerEvent``
  saves, through its own Celery task, routed to the ``bench`` queue;
- ``bench`` itself: that model, the bare Celery tasks and the bare Django view.

Everything else, the middleware and every ``NOTIFY_*`` / ``ACCOUNTS_*`` setting included, is
``config.settings`` as the environment sets it, so "ours" runs exactly as deployed.
"""

from config.settings import *  # noqa: F403
from config.settings import CELERY_TASK_ROUTES, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_webhook", "bench"]
ROOT_URLCONF = "bench.urls"

DJANGO_WEBHOOK = {
    "MODELS": ["bench.PeerEvent"],
    # The peer's defaults, spelled out: it logs every event row and caches the webhook lookup.
    "STORE_EVENTS": True,
    "USE_CACHE": True,
}

CELERY_TASK_ROUTES = {
    **CELERY_TASK_ROUTES,
    "bench.bare_post": {"queue": "bench"},
    "bench.noop": {"queue": "bench"},
    "django_webhook.tasks.fire_webhook": {"queue": "bench"},
}
