"""Celery (``CELERY_`` prefix, read by config/celery.py) and the periodic tasks beat runs.

Each setting says why: the database row is the truth about every notification and the broker
only carries wake-ups, so the settings favour redelivery over loss and keep the broker small.
"""

from config.broker import broker_is_redis, rabbitmq_exchanges, rabbitmq_queues

from .accounts import ACCOUNTS_PRUNE_INTERVAL, ACCOUNTS_RECONCILE_INTERVAL
from .env import env
from .notifications import NOTIFY_PRUNE_INTERVAL, NOTIFY_SWEEP_INTERVAL
from .payments import PAYMENTS_EXPIRE_INTERVAL
from .redis import DEPLOYMENT_NAMESPACE, REDIS_URL

# The broker: the Redis of REDIS_URL unless CELERY_BROKER_URL names another (the name Celery
# itself reads, so an existing override keeps working). ``amqp://user:password@host:5672//``
# selects RabbitMQ; the cache and the API throttles stay on REDIS_URL either way. Choose
# RabbitMQ when a worker may be cut off or run longer than a visibility timeout (it
# redelivers what a lost connection held unacknowledged, not on a visibility timer), or when
# queued wake-ups must survive a broker node (quorum queues); Redis when one small service
# should do both jobs (README "Scaling out").
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
BROKER_IS_REDIS = broker_is_redis(CELERY_BROKER_URL)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Tasks carry ids only; JSON keeps messages readable and refuses pickled objects.
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
# Results are in the database rows; a result backend would only grow the broker's store.
CELERY_TASK_IGNORE_RESULT = True
# Ack after the task ran, so a worker that dies mid-task leaves the message to be redelivered
# (the database claim turns the redelivered copy into a no-op; the sweeper covers the rest).
CELERY_TASK_ACKS_LATE = True
# ...and a child killed by the OS (SIGKILL, OOM, hard time limit) counts as "lost": requeue,
# do not ack. No poison-message loop: the requeued delivery finds its attempt still claimed.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# One message reserved per process: a dead worker strands at most one, and long queues stay
# in the broker rather than in worker memory.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# When the broker goes away, let running deliveries finish and record their result in the
# database; cancelling them (Celery 6's default) would leave claims for the sweeper to free.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Retry the broker forever: a worker that gave up after a long broker outage would stall
# every delivery until someone restarted it.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
if BROKER_IS_REDIS:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Redis redelivers an unacked message after the visibility timeout; every task must
        # finish well inside it (kombu issue 337).
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
        # This deployment's queues, unacked messages and control channels on a shared Redis
        # (DEPLOYMENT_NAMESPACE): another deployment's worker never sees them.
        "global_keyprefix": f"{DEPLOYMENT_NAMESPACE}:",
    }
else:
    # RabbitMQ has no key prefix (kombu's ``global_keyprefix`` is Redis-only) and no
    # visibility timeout (nothing to pass): the namespace goes into the names of the queues,
    # their exchange and the control and event exchanges instead (config/broker.py).
    CELERY_TASK_QUEUES = rabbitmq_queues(namespace=DEPLOYMENT_NAMESPACE)
    CELERY_CONTROL_EXCHANGE = rabbitmq_exchanges(namespace=DEPLOYMENT_NAMESPACE)["control"]
    CELERY_EVENT_EXCHANGE = rabbitmq_exchanges(namespace=DEPLOYMENT_NAMESPACE)["events"]
    # Publisher confirms: a publish returns once RabbitMQ has the message (on a quorum
    # queue: on a majority of nodes), and raises otherwise, so the outbox row is left due
    # for the sweeper rather than assumed sent.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
    # A worker whose connection dies silently (its host cut off) holds its reserved messages
    # until RabbitMQ notices: with 30 s heartbeats about a minute rather than four (the
    # default is 120 s). Only the worker's consuming connection beats; publishers do not.
    CELERY_BROKER_HEARTBEAT = 30
# Give up publishing quickly when the broker is down: the outbox row is the record, and a web
# request should not hang on the broker (the sweeper re-sends).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# Hard limit below Redis's visibility timeout (and RabbitMQ's 30-minute consumer timeout): no
# task is still running when the broker hands its message to another worker. (Delivery tasks
# only wake the dispatcher: microseconds.)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_DEFAULT_QUEUE = "default"
# Deliveries and periodic work get their own queues so either can be given its own workers;
# routes rather than the task's ``queue=`` attribute, which Celery 6 drops.
CELERY_TASK_ROUTES = {
    "notifications.deliver": {"queue": "notifications"},
    "notifications.dispatch": {"queue": "notifications"},
    "notifications.sweep": {"queue": "periodic"},
    "notifications.prune": {"queue": "periodic"},
    "notifications.announce_endpoint_disabled": {"queue": "periodic"},
    "payments.expire_stale_orders": {"queue": "periodic"},
    "accounts.reconcile_pending": {"queue": "periodic"},
    "accounts.prune_receipts": {"queue": "periodic"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Celery's Django fixup closes every database connection before and after each task unless
# this is set, so each delivery opened a new PostgreSQL connection (4,008 sessions for 4,000
# tasks, ~6 ms of server CPU each: bench "Where the CPU goes"). With it set that high, tasks
# are treated as Django treats requests instead: close_old_connections() around each one
# (config/celery.py) keeps a connection for DB_CONN_MAX_AGE and drops a broken one.
CELERY_DB_REUSE_MAX = 2**31
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Periodic tasks: created in django-celery-beat's tables on `migrate` when missing
# (core/beat.py); after that staff edit them in the admin and a deploy leaves them alone.
# ``every`` in seconds; ``queue`` as routed above.
PERIODIC_TASKS = [
    {
        "name": "notifications: sweep due and orphaned notifications",
        "task": "notifications.sweep",
        "every": NOTIFY_SWEEP_INTERVAL,
        "queue": "periodic",
    },
    {
        "name": "payments: expire stale pending orders",
        "task": "payments.expire_stale_orders",
        "every": PAYMENTS_EXPIRE_INTERVAL,
        "queue": "periodic",
    },
    {
        "name": "accounts: reconcile pending recharges",
        "task": "accounts.reconcile_pending",
        "every": ACCOUNTS_RECONCILE_INTERVAL,
        "queue": "periodic",
    },
    {
        "name": "notifications: prune delivered notifications past their retention",
        "task": "notifications.prune",
        "every": NOTIFY_PRUNE_INTERVAL,
        "queue": "periodic",
    },
    {
        "name": "accounts: prune notification receipts past their retention",
        "task": "accounts.prune_receipts",
        "every": ACCOUNTS_PRUNE_INTERVAL,
        "queue": "periodic",
    },
]
