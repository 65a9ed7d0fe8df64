"""The scenarios, one module per fault family, and their registry in table order.

- ``worker``: 1, the worker's process group SIGKILLed mid-delivery; 12, SIGKILLed with a
  batch in flight at a slow receiver;
- ``broker``: 2a Redis flushed, 2b Redis restarted empty, 5 broker redelivery and duplicates;
- ``rabbitmq``: RabbitMQ's own (skipped on Redis): 2c its queues purged, 2d the stack's
  connections closed, 5b a frozen worker's unacknowledged messages redelivered;
- ``commit``: 3, the process dies between commit and enqueue;
- ``receiver``: 4, the receiver refuses, stalls and fails, then recovers;
- ``duplicates``: 6 two beats, 7 concurrent duplicates with reconciliation;
- ``reconciliation``: 8, reconciliation through a restart and a payments API outage;
- ``endpoints``: 9 a noisy neighbour, 10 the circuit breaker's cycle, 11 an endpoint
  disabled and recovered;
- ``network``: 13-18, 20, 21 on the simulated cluster: partitions, broker and PostgreSQL
  restarts, a skewed clock;
- ``queue``: 19, scheme 1 (accounts on the queue transport): a subscriber SIGKILLed, every
  subscriber down, the worker SIGKILLed awaiting acknowledgements.
"""

import re

from . import (
    broker,
    commit,
    duplicates,
    endpoints,
    network,
    queue,
    rabbitmq,
    receiver,
    reconciliation,
    worker,
)

SCENARIOS = sorted(
    [
        *worker.SCENARIOS,
        *broker.SCENARIOS,
        *rabbitmq.SCENARIOS,
        *commit.SCENARIOS,
        *receiver.SCENARIOS,
        *duplicates.SCENARIOS,
        *reconciliation.SCENARIOS,
        *endpoints.SCENARIOS,
        *network.SCENARIOS,
        *queue.SCENARIOS,
    ],
    key=lambda scenario: (int(re.match(r"\d+", scenario.key)[0]), scenario.key),
)
BY_KEY = {scenario.key: scenario for scenario in SCENARIOS}
