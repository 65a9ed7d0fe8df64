"""payments: order limits and lifetime, the cashier's public URL, merchants' defaults."""

from .env import env

PAYMENTS_MIN_AMOUNT = env.int("PAYMENTS_MIN_AMOUNT", default=1)  # minor units
PAYMENTS_MAX_AMOUNT = env.int("PAYMENTS_MAX_AMOUNT", default=100_000_000)  # minor units
PAYMENTS_CURRENCIES = env.list("PAYMENTS_CURRENCIES", default=["CNY", "USD", "EUR"])
PAYMENTS_ORDER_TTL = env.float("PAYMENTS_ORDER_TTL", default=30 * 60)  # seconds pending
PAYMENTS_EXPIRE_INTERVAL = env.float("PAYMENTS_EXPIRE_INTERVAL", default=60)  # seconds
# Base URL of the cashier as the paying browser reaches it.
PAYMENTS_PUBLIC_URL = env("PAYMENTS_PUBLIC_URL", default="http://127.0.0.1:8000")
# Hosts a new merchant's notify_url and return_url may name when create_merchant is given
# no --allowed-host (development: the local demo; production: none, hosts must be given).
PAYMENTS_DEFAULT_ALLOWED_HOSTS = env.list(
    "PAYMENTS_DEFAULT_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"]
)
# After roll_webhook_secret, how long notifications are signed with the old secret too.
PAYMENTS_WEBHOOK_SECRET_OVERLAP = env.float("PAYMENTS_WEBHOOK_SECRET_OVERLAP", default=86400)
# Order creation per merchant ("N/sec|min|hour|day"; empty: unlimited). Generous: accounts'
# reconciliation repeats creates and must never be throttled in normal operation.
PAYMENTS_CREATE_THROTTLE_RATE = env("PAYMENTS_CREATE_THROTTLE_RATE", default="3000/min")
# The merchant API as merchants reach it: the portal's integration guide fills it into its
# examples. By default the payments gunicorn of this machine (the Procfile's PAYMENTS_PORT).
PAYMENTS_API_URL = env(
    "PAYMENTS_API_URL", default=f"http://127.0.0.1:{env.int('PAYMENTS_PORT', default=8001)}"
)
# The portal's presses that send again now (Resend, Recover, Re-enable) per merchant ("N/min";
# empty: unlimited): one may name up to 100 orders or a whole endpoint's backlog, and a script
# pressing it in a loop would crowd the merchant's own endpoint.
PAYMENTS_PORTAL_RESEND_RATE = env("PAYMENTS_PORTAL_RESEND_RATE", default="30/min")
