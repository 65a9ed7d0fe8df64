"""The harness: one stack (Redis and the Procfile's processes, each in a process group of its
own), the databases it runs on, the fault proxy in front of the receiver, the people at
browsers, the settle-until-the-audit-is-clean wait, and ``make run`` / ``make test`` /
``make demo`` on top. chaos/ and bench/ are built from it. Never imported by the product."""
