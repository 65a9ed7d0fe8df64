"""accounts: a merchant of payments, reached over HTTP only; its credentials, public URL and
reconciliation."""

from .env import env

ACCOUNTS_PAYMENTS_API_URL = env("ACCOUNTS_PAYMENTS_API_URL", default="http://127.0.0.1:8001")
DEV_PAYMENTS_API_KEY = "sk_dev_only_demo_key_not_a_secret"
DEV_WEBHOOK_SECRET = "whsec_ZGV2LW9ubHktZGVtby13ZWJob29rLXNlY3JldA=="
ACCOUNTS_PAYMENTS_API_KEY = env("ACCOUNTS_PAYMENTS_API_KEY", default=DEV_PAYMENTS_API_KEY)
ACCOUNTS_WEBHOOK_SECRETS = env.list("ACCOUNTS_WEBHOOK_SECRETS", default=[DEV_WEBHOOK_SECRET])
# Where payments should POST our notifications, and where the browser returns after paying.
ACCOUNTS_PUBLIC_URL = env("ACCOUNTS_PUBLIC_URL", default="http://127.0.0.1:8000")
ACCOUNTS_API_TIMEOUT = env.float("ACCOUNTS_API_TIMEOUT", default=10)  # seconds
ACCOUNTS_DEFAULT_CURRENCY = env("ACCOUNTS_DEFAULT_CURRENCY", default="CNY")
ACCOUNTS_RECONCILE_AFTER = env.float("ACCOUNTS_RECONCILE_AFTER", default=300)  # seconds pending
ACCOUNTS_RECONCILE_INTERVAL = env.float("ACCOUNTS_RECONCILE_INTERVAL", default=60)  # seconds
ACCOUNTS_RECONCILE_BATCH = env.int("ACCOUNTS_RECONCILE_BATCH", default=200)
# The notify endpoint, per client address ("N/min"; empty: unlimited). Far above payments'
# own retries, which must never be throttled into failed attempts.
ACCOUNTS_NOTIFY_THROTTLE_RATE = env("ACCOUNTS_NOTIFY_THROTTLE_RATE", default="6000/min")
