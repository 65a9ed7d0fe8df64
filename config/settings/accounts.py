"""accounts: a merchant of payments, reached over HTTP only; its credentials, public URL and
reconciliation."""

import re

from django.core.exceptions import ImproperlyConfigured

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
# Seconds a notification receipt (the webhook-id's idempotency record) is kept after its last
# delivery; then the prune task deletes it. Far longer than payments' retry window (about
# 24 h, NOTIFY_RETRY_SCHEDULE): every retry of a notification finds its receipt (a duplicate,
# counted, a changed body under the same id refused). A delivery after that (a staff resend)
# is still applied once only: by the recharge's status and the ledger's unique tx_no.
ACCOUNTS_RECEIPT_RETENTION = env.float("ACCOUNTS_RECEIPT_RETENTION", default=30 * 86400)
# Seconds between prune runs (beat), receipts deleted per batch (one transaction, a range of
# the last_received_at index), seconds a run may spend before leaving the rest to the next.
ACCOUNTS_PRUNE_INTERVAL = env.float("ACCOUNTS_PRUNE_INTERVAL", default=3600)
ACCOUNTS_PRUNE_BATCH = env.int("ACCOUNTS_PRUNE_BATCH", default=1000)
ACCOUNTS_PRUNE_BUDGET = env.float("ACCOUNTS_PRUNE_BUDGET", default=30)
# Verified notifications on the notify endpoint, per client address ("N/min"; empty:
# unlimited). Far above payments' own retries, which must never be throttled into failed
# attempts.
ACCOUNTS_NOTIFY_THROTTLE_RATE = env("ACCOUNTS_NOTIFY_THROTTLE_RATE", default="6000/min")
# Notify requests that fail verification (or are not JSON), per client address, counted
# apart so that junk cannot spend the budget above; past this one they get 429 instead of
# 400/415. A genuine sender fails only while a secret is misconfigured, and retries either
# way. (The signature is checked before either budget is counted, so this bounds the answers
# junk gets, not the HMAC work: that is cheap, on a body capped at API_MAX_BODY_BYTES.)
ACCOUNTS_NOTIFY_FAILURE_THROTTLE_RATE = env(
    "ACCOUNTS_NOTIFY_FAILURE_THROTTLE_RATE", default="600/min"
)
# Starting a recharge, per user ("N/min"): a person tops up a few times at most; far beyond
# that one user's form submissions would spend the merchant's PAYMENTS_CREATE_THROTTLE_RATE,
# which every user of the wallet shares, and lock the others out.
ACCOUNTS_RECHARGE_USER_RATE = env("ACCOUNTS_RECHARGE_USER_RATE", default="10/min")
# Recharges a user may have pending (started, not yet paid or declined) before starting
# another: a person has one open, and a few left at the cashier; without a cap, starts within
# the rate above would still pile up open orders at payments. Unpaid ones expire after
# payments' PAYMENTS_ORDER_TTL (30 min), freeing a place.
ACCOUNTS_RECHARGE_PENDING_MAX = env.int("ACCOUNTS_RECHARGE_PENDING_MAX", default=5)
# How payments notifies us: "http" POSTs to our notify API (scheme 2, the default); "queue"
# publishes on the broker for our subscriber (scheme 1: the Procfile's ``subscriber``, run
# only then), to queue ``ACCOUNTS_NOTIFY_QUEUE``, which payments must have allowed our
# merchant (``create_merchant --notify-queue``). Same verification and apply either way.
ACCOUNTS_NOTIFY_TRANSPORT = env("ACCOUNTS_NOTIFY_TRANSPORT", default="http")
ACCOUNTS_NOTIFY_QUEUE = env("ACCOUNTS_NOTIFY_QUEUE", default="accounts")
if ACCOUNTS_NOTIFY_TRANSPORT not in ("http", "queue"):
    raise ImproperlyConfigured(
        f"ACCOUNTS_NOTIFY_TRANSPORT must be 'http' or 'queue'; got {ACCOUNTS_NOTIFY_TRANSPORT!r}"
    )
if not re.fullmatch(r"[a-z0-9-]{1,40}", ACCOUNTS_NOTIFY_QUEUE):
    raise ImproperlyConfigured(
        f"ACCOUNTS_NOTIFY_QUEUE must be 1-40 lower-case letters, digits or '-'; "
        f"got {ACCOUNTS_NOTIFY_QUEUE!r}"
    )
