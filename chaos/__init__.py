"""Fault injection against the real stack: ``python -m chaos`` (``make chaos``).

Each scenario starts its own Redis (a packaged redis-server on a free port, no persistence),
a fresh database cloned from a migrated template, and the Procfile's processes (web and
payments gunicorn, Celery worker, beat) each in its own process group, so one can be
SIGKILLed whole. Orders are driven through the real pages; notifications reach accounts'
notify endpoint through ``chaos.proxy.FaultProxy``, a real HTTP server that can refuse,
stall or fail on demand and counts every request. The verdict is ``audit.checks.audit``.

Modules: ``stack`` (processes, Redis, the database), ``proxy`` (the faulty receiver),
``shoppers`` (orders through the pages), ``oncommit`` (a payer that dies at commit),
``scenarios`` (the faults and the figures), ``settings`` (the stack's settings overlay).
"""
