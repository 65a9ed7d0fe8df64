"""The notifications app's knobs (defaults and reasons in notifications/conf.py), each from an
environment variable of the same name, and this project's choices for them."""

from config.broker import broker_is_redis
from notifications.conf import DEFAULTS

from .env import env, env_overrides
from .redis import DEPLOYMENT_NAMESPACE, REDIS_URL

globals().update(env_overrides("NOTIFY_", DEFAULTS, casts={"RETRY_WINDOW": env.float}))

# Payments' merchants sign their notifications, and may name an ops URL (payments/selectors.py).
NOTIFY_SECRET_RESOLVER = "payments.selectors.merchant_webhook_secrets"
NOTIFY_OPS_URL_RESOLVER = "payments.selectors.merchant_ops_url"
# Development lets the local demo notify itself on loopback; production refuses such ranges.
NOTIFY_ALLOWED_NETWORKS = env.list("NOTIFY_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])

# Queue targets' queues and exchange (notifications/queues.py) carry this deployment's
# namespace on RabbitMQ, which has no key prefix; on Redis kombu's ``global_keyprefix``
# (config/settings/celery.py) already puts every key in it. The broker as celery.py reads it.
NOTIFY_QUEUE_PREFIX = (
    ""
    if broker_is_redis(env("CELERY_BROKER_URL", default=REDIS_URL))
    else f"{DEPLOYMENT_NAMESPACE}."
)
