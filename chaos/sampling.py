"""Watching the database while a fault runs: a value read again and again in a thread of its
own, each sample kept with the moment it was read."""

import threading
import time
from collections.abc import Callable

MAX_SAMPLES = 100_000  # about 80 minutes at 20 a second: a run never gets near it


class Sampler:
    """Calls ``read()`` every ``interval`` seconds from entering the ``with`` block to leaving
    it (at most ``MAX_SAMPLES`` times), keeping ``samples``: ``(time.time(), value)``.
    ``read`` runs in the sampler's thread, through that thread's database connection."""

    def __init__(self, read: Callable[[], object], *, interval: float):
        self.read = read
        self.interval = interval
        self.samples: list[tuple[float, object]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def values(self) -> list:
        return [value for _, value in self.samples]

    def _run(self) -> None:
        from django.db import connection

        try:
            while len(self.samples) < MAX_SAMPLES:
                self.samples.append((time.time(), self.read()))
                if self._stop.wait(self.interval):
                    return
        finally:
            connection.close()
