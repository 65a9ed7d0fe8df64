"""Fault injection against the real stack: ``python -m chaos`` (``make chaos``).

Each scenario is a ``devstack.run.Run``: its own Redis (a packaged redis-server on a free
port, no persistence, a namespace of its own; the broker too, unless ``CELERY_BROKER_URL``
names RabbitMQ), a fresh database cloned from a migrated
template, and the Procfile's processes (web and payments gunicorn, Celery worker, beat) each
in its own process group, so one can be SIGKILLed whole. Orders are placed through the real
pages; notifications reach accounts' notify endpoint through ``devstack.proxy.FaultProxy``,
which refuses, drops, stalls or fails on demand and counts what it did. The verdict is
``audit.checks.audit``.

Modules: ``harness`` (sizes, the run of one scenario, its outcome), ``figures`` (the table's
figures and the reads scenarios share), ``scenarios`` (one module per fault family and the
registry), ``oncommit`` (a payer that dies at commit), ``settings`` (the processes' settings).
"""
