"""Small measuring helpers shared by the scenarios: memory sampling, percentiles, and beat
played by the driver."""

import contextlib
import math
import threading
from collections.abc import Callable

import psutil
import redis


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class Periodic:
    """``with Periodic(interval, tick):`` calls ``tick()`` every ``interval`` seconds from a
    thread of its own until the block ends."""

    def __init__(self, interval: float, tick: Callable[[], object], *, name: str):
        self.interval = interval
        self.tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class MemorySampler(Periodic):
    """Samples the total RSS of ``processes()`` and Redis ``used_memory`` every ``interval``
    seconds in a thread; keeps the peaks and the last sample."""

    def __init__(self, *, processes: Callable[[], list], client: redis.Redis, interval=0.1):
        super().__init__(interval, self.sample, name="memory-sampler")
        self.processes = processes
        self.client = client
        self.peak_rss = self.last_rss = 0
        self.peak_redis = self.last_redis = 0

    def sample(self) -> None:
        rss = 0
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                rss += process.memory_info().rss
        used = int(self.client.info("memory")["used_memory"])
        self.last_rss, self.last_redis = rss, used
        self.peak_rss, self.peak_redis = max(self.peak_rss, rss), max(self.peak_redis, used)

    def __enter__(self):
        self.sample()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self.sample()


class Beat(Periodic):
    """``with Beat(interval):`` sends the real ``notifications.sweep`` task every
    ``interval`` seconds, as beat would, until the block ends."""

    def __init__(self, interval: float):
        from notifications.tasks import sweep

        super().__init__(interval, sweep.apply_async, name="bench-beat")
