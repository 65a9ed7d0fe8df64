"""Settings shared by every environment, read from the environment with development defaults.

Grouped by concern. Every value can be overridden by an environment variable of the same name
(see README "Configuration"). Development defaults that look like secrets are deliberately
fake and ``config.settings.production`` refuses them.
"""

import sqlite3
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

# --- Core -----------------------------------------------------------------------------------
DEV_SECRET_KEY = "django-insecure-dev-only-key-never-use-in-production"
SECRET_KEY = env("DJANGO_SECRET_KEY", default=DEV_SECRET_KEY)
DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "notifications",
    "payments",
    "accounts",
    "audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.RequestBodyLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "accounts:home"
LOGOUT_REDIRECT_URL = "login"

# --- Database -------------------------------------------------------------------------------
# SQLite by default so `make run` needs nothing installed; DATABASE_URL selects PostgreSQL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The claim and the receipt are single UPDATE/INSERT … RETURNING statements.
    if sqlite3.sqlite_version_info < (3, 35):
        raise ImproperlyConfigured(f"SQLite 3.35+ is needed, this is {sqlite3.sqlite_version}")
    DATABASES["default"]["OPTIONS"] = {
        # Web, worker and beat are separate processes writing one file: WAL lets readers
        # proceed during a write, IMMEDIATE takes the write lock at BEGIN so two writers
        # queue on the busy timeout instead of failing with "database is locked" mid-way.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file beside the database, not :memory:, so the worker processes of the end-to-end
    # tests see it too.
    _db_path = Path(DATABASES["default"]["NAME"])
    DATABASES["default"]["TEST"] = {"NAME": str(_db_path.with_name(f"test_{_db_path.name}"))}
# Persistent connections: a new PostgreSQL connection per request or task (a backend
# process forked and authenticated) was ~15 % of the notify endpoint's time (bench
# "receiver throughput"). Health checks drop a connection the server closed meanwhile.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Whitenoise serves the admin's assets from gunicorn; in development straight from the apps.
WHITENOISE_USE_FINDERS = DEBUG

# --- Request limits -------------------------------------------------------------------------
# Declared bodies larger than these are refused with 413 before any view reads them
# (config/middleware.py): API endpoints take small JSON documents; forms and the admin more.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=16 * 1024)
REQUEST_MAX_BODY_BYTES = env.int("REQUEST_MAX_BODY_BYTES", default=256 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BODY_BYTES
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# --- Cache ----------------------------------------------------------------------------------
# The Celery broker and the cache: one Redis.
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Shared by every gunicorn worker and machine: the API throttles count here.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "recharge",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.JSONObjectParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    # Trusted reverse proxies in front of gunicorn: with 0, throttles key on REMOTE_ADDR and
    # ignore X-Forwarded-For (a client could write anything there).
    "NUM_PROXIES": env.int("DJANGO_NUM_PROXIES", default=0),
}
# Throttle rates ("N/sec|min|hour|day"; empty: unlimited). Generous: payments' own retries
# and accounts' reconciliation must never be throttled in normal operation.
PAYMENTS_CREATE_THROTTLE_RATE = env("PAYMENTS_CREATE_THROTTLE_RATE", default="3000/min")
ACCOUNTS_NOTIFY_THROTTLE_RATE = env("ACCOUNTS_NOTIFY_THROTTLE_RATE", default="6000/min")

# OpenAPI 3 of the merchant and notify APIs, served at /api/schema/ and /api/docs/; the
# Swagger UI assets come from drf-spectacular-sidecar (no CDN).
SPECTACULAR_SETTINGS = {
    "TITLE": "Recharge payments API",
    "DESCRIPTION": "The merchant API (create and query recharge orders, Bearer API key) and the "
    "notify endpoint receiving Standard Webhooks-signed recharge notifications.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Tasks carry ids only; JSON keeps messages readable and refuses pickled objects.
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
# Results are in the database rows; a result backend would only grow Redis.
CELERY_TASK_IGNORE_RESULT = True
# Ack after the task ran, so a worker that dies mid-task leaves the message to be redelivered
# (the database claim turns the redelivered copy into a no-op; the sweeper covers the rest).
CELERY_TASK_ACKS_LATE = True
# ...and a child killed by the OS (SIGKILL, OOM, hard time limit) counts as "lost": requeue,
# do not ack. No poison-message loop: the requeued delivery finds its attempt still claimed.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message reserved per process: a dead worker strands at most one, and long queues stay
# in Redis rather than in worker memory. (Countdown messages are reserved beyond it; the
# sweeper re-sends those of a dead worker once NOTIFY_REQUEUE_AFTER has passed.)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# When Redis goes away, let running deliveries finish and record their result in the
# database; cancelling them (Celery 6's default) would leave claims for the sweeper to free.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Retry the broker forever: a worker that gave up after a long Redis outage would stall
# every delivery until someone restarted it.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Redis redelivers an unacked message after the visibility timeout; every task (and every
# countdown, capped by NOTIFY_COUNTDOWN_CAP) must finish well inside it (kombu issue 337).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)
}
# Give up publishing quickly when Redis is down: the outbox row is the record, and a web
# request should not hang on the broker (the sweeper re-sends).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# Hard limit below the visibility timeout: no task is still running when Redis hands its
# message to another worker. notifications.deliver has its own, below NOTIFY_CLAIM_TIMEOUT.
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_DEFAULT_QUEUE = "default"
# Deliveries and periodic work get their own queues so either can be given its own workers;
# routes rather than the task's ``queue=`` attribute, which Celery 6 drops.
CELERY_TASK_ROUTES = {
    "notifications.deliver": {"queue": "notifications"},
    "notifications.sweep": {"queue": "periodic"},
    "payments.expire_stale_orders": {"queue": "periodic"},
    "accounts.reconcile_pending": {"queue": "periodic"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Celery's Django fixup closes every database connection before and after each task unless
# this is set, so each delivery opened a new PostgreSQL connection (4,008 sessions for 4,000
# tasks, ~6 ms of server CPU each: bench "Where the CPU goes"). With it set that high, tasks
# are treated as Django treats requests instead: close_old_connections() around each one
# (config/celery.py) keeps a connection for DB_CONN_MAX_AGE and drops a broken one.
CELERY_DB_REUSE_MAX = 2**31
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- notifications (generic outbox delivery) ------------------------------------------------
# Retry schedule: "exponential" (default), "wechat" (WeChat Pay's ladder), or an explicit
# comma-separated ladder of delays such as "15s,30s,3m,1h". See notifications/retry.py.
NOTIFY_RETRY_SCHEDULE = env("NOTIFY_RETRY_SCHEDULE", default="exponential")
# Multiplies every delay and the window: 0.001 runs a 24 h schedule in about 90 s.
NOTIFY_TIME_SCALE = env.float("NOTIFY_TIME_SCALE", default=1.0)
NOTIFY_RETRY_JITTER = env.float("NOTIFY_RETRY_JITTER", default=0.1)  # ± fraction of a delay
# Seconds (unscaled) after creation when retries stop; unset: the schedule's own window.
NOTIFY_RETRY_WINDOW = env.float("NOTIFY_RETRY_WINDOW", default=None)
# Delays up to this many seconds are Celery countdowns; longer ones wait in the database
# for the sweeper. Small, because a countdown message is held by Redis and by the worker
# until it is due: with a receiver down, every waiting notification would (bench "retry
# storm": worker RSS and Redis memory grew with the number waiting at 300 s).
NOTIFY_COUNTDOWN_CAP = env.float("NOTIFY_COUNTDOWN_CAP", default=5)
# A claimed attempt older than this is presumed dead (worker killed) and is released.
NOTIFY_CLAIM_TIMEOUT = env.float("NOTIFY_CLAIM_TIMEOUT", default=120)
# A task message expected to have run this long ago but whose row is still due is re-sent.
NOTIFY_REQUEUE_AFTER = env.float("NOTIFY_REQUEUE_AFTER", default=60)
# The sweeper is what sends retries longer than the cap, so a due retry waits at most this
# long; its tick costs the same at any table size (bench "scan cost").
NOTIFY_SWEEP_INTERVAL = env.float("NOTIFY_SWEEP_INTERVAL", default=2)  # seconds
# At most this many messages in the deliveries' queue after a sweep: enough to keep the
# workers busy until the next one (250/s here, more than 4 prefork processes deliver), and
# all a backlog of any size costs the broker (bench "retry storm": ~0.9 KiB of Redis per
# message; with 1,000 every 5 s Redis ended a 20,000-row storm holding 1.7 times what it
# held after a 1,000-row one, 1.3 times with 500). Raise it with the workers (README
# "Scaling out").
NOTIFY_SWEEP_BATCH = env.int("NOTIFY_SWEEP_BATCH", default=500)
NOTIFY_CONNECT_TIMEOUT = env.float("NOTIFY_CONNECT_TIMEOUT", default=3.05)
NOTIFY_READ_TIMEOUT = env.float("NOTIFY_READ_TIMEOUT", default=10)
NOTIFY_RESPONSE_EXCERPT_BYTES = 1024
# Dotted path to ``f(sender_key) -> list[str]`` giving the whsec_ secrets to sign with.
NOTIFY_SECRET_RESOLVER = "payments.selectors.merchant_webhook_secrets"
# Seconds a worker process reuses the resolver's answer (notifications/secrets.py); 0: ask
# on every attempt.
NOTIFY_SECRET_CACHE_SECONDS = env.float("NOTIFY_SECRET_CACHE_SECONDS", default=10)
# SSRF guard (notifications/netguard.py): notifications are never sent to loopback, private,
# link-local, multicast or cloud-metadata addresses, except to these CIDRs. The development
# default lets the local demo notify itself on loopback; production refuses such ranges.
NOTIFY_ALLOWED_NETWORKS = env.list("NOTIFY_ALLOWED_NETWORKS", default=["127.0.0.0/8", "::1/128"])

# --- payments -------------------------------------------------------------------------------
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

# --- accounts (a merchant of payments, reached over HTTP only) -------------------------------
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
# Fault injection for `make demo` and the tests: refuse this share of first deliveries (503)
# and silently drop (2xx, not applied) this share of notifications. Off unless set.
ACCOUNTS_FAULT_REFUSE_FIRST = env.float("ACCOUNTS_FAULT_REFUSE_FIRST", default=0.0)
ACCOUNTS_FAULT_DROP = env.float("ACCOUNTS_FAULT_DROP", default=0.0)

# --- Admin ----------------------------------------------------------------------------------
# An order pending longer than this is "stuck" in the admin's filters.
# Past the order TTL plus an expiry tick, a pending order means expiry itself is not running.
STUCK_AFTER = env.float("STUCK_AFTER", default=45 * 60)  # seconds

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
