"""``make bench`` / ``python -m bench``: throughput, latency, scan cost and memory of the
notification pipeline, each measured against a baseline in the same run (see README
"Performance"). A Django app only under ``bench.settings`` (the peer's model, the bare task
and view); the apps never import it."""
