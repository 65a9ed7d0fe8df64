"""Settings of every process a chaos run starts: the project's, and one broker knob.

kombu's Redis transport puts a message back on its queue once it has been unacknowledged
for ``visibility_timeout`` seconds, but only looks for such messages every
``unacked_restore_interval`` × ``unacked_restore_throttle`` seconds (10 × 10 by default).
Scenario 5 lowers the visibility timeout (``CELERY_VISIBILITY_TIMEOUT``) to make the broker
redeliver tasks that are still running or waiting for their countdown, scenario 19 to make it
hand a SIGKILLed subscriber's messages to the other within the scenario; here the scan runs
every ``CHAOS_UNACKED_RESTORE_INTERVAL`` seconds (default 1) so that it does so within the
scenario. With the project's one-hour visibility timeout the scan finds nothing either way.
"""

from config.settings import *  # noqa: F403
from config.settings.celery import BROKER_IS_REDIS, CELERY_BROKER_TRANSPORT_OPTIONS
from config.settings.env import env

# Redis's transport options only: RabbitMQ has no visibility timeout to scan for.
if BROKER_IS_REDIS:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        **CELERY_BROKER_TRANSPORT_OPTIONS,
        "unacked_restore_interval": env.int("CHAOS_UNACKED_RESTORE_INTERVAL", default=1),
        "unacked_restore_throttle": 1,
    }
