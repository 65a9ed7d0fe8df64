"""The retry schedule: when the next delivery attempt is due, and when a notification is exhausted.

A schedule is a ladder of delays (seconds before retry 1, 2, ...) and a window measured from
the notification's creation: an attempt is only scheduled while the ladder has a step left and
the attempt falls inside the window. ``NOTIFY_RETRY_SCHEDULE`` selects it:

- ``"exponential"`` (default): 15 s doubling to a 4 h cap, 14 retries (15 attempts, ~20 h),
  inside a 24 h window.
- ``"wechat"``: WeChat Pay's documented notification ladder (Pay API v3, "支付结果通知":
  15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h, 24h4m in all), window 27 h
  so that even +10 % jitter on every step keeps its last attempt.
- ``"queue"``: the seeds' scheme-1 ladder for queue targets (1m, 5m, 10m, 30m, 1h, 2h, 5h,
  10h: 18 h 46 min in all), window 21 h so that +10 % jitter on every step keeps its last
  publication. Queue targets (``queue://<name>``) follow ``NOTIFY_QUEUE_RETRY_SCHEDULE``
  (default ``"queue"``), HTTP targets ``NOTIFY_RETRY_SCHEDULE``.
- an explicit ladder such as ``"15s,30s,3m,1h"``; no window beyond the ladder itself (a
  window of exactly the ladder's sum would drop its last step, since attempts take time).

``NOTIFY_RETRY_WINDOW`` (seconds) overrides the window, ``NOTIFY_TIME_SCALE`` multiplies
every delay and the window, and ``NOTIFY_RETRY_JITTER`` spreads each delay by ± that fraction
so a receiver that comes back is not hit by every waiting notification at once.
"""

import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from .conf import notify_settings

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")

WECHAT_LADDER = "15s,15s,30s,3m,10m,20m,30m,30m,30m,60m,3h,3h,3h,6h,6h"
QUEUE_LADDER = "1m,5m,10m,30m,1h,2h,5h,10h"
# Named ladders and their windows (seconds, unscaled).
NAMED_LADDERS = {"wechat": (WECHAT_LADDER, 27 * 3600), "queue": (QUEUE_LADDER, 21 * 3600)}


def parse_duration(text: str) -> float:
    """``"15s"``, ``"3m"``, ``"1.5h"``, ``"250ms"`` → seconds. Raises ``ValueError``."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 15s, 3m, 1h)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def exponential_ladder(*, base: float, factor: float, cap: float, retries: int) -> tuple:
    """Delays ``base * factor**n`` capped at ``cap`` seconds, for ``retries`` retries."""
    return tuple(min(cap, base * factor**n) for n in range(retries))


@dataclass(frozen=True)
class RetrySchedule:
    """A ladder of delays (seconds, unscaled) and a window (seconds, unscaled; None: the
    ladder alone decides)."""

    delays: tuple
    window: float | None
    jitter: float = 0.0
    scale: float = 1.0

    def next_attempt_at(
        self, *, attempts_made: int, created_at: datetime, now: datetime, rng=random
    ) -> datetime | None:
        """When attempt ``attempts_made + 1`` is due, or ``None`` when the schedule is spent.

        ``None`` means exhausted: no step left on the ladder, or the step lands past
        ``created_at`` + window.
        """
        if attempts_made < 1 or attempts_made > len(self.delays):
            return None
        delay = self.delays[attempts_made - 1] * self.scale
        if self.jitter:
            delay *= 1 + rng.uniform(-self.jitter, self.jitter)
        due = now + timedelta(seconds=delay)
        end = self.window_end(created_at)
        if end is not None and due > end:
            return None
        return due

    def window_end(self, created_at: datetime) -> datetime | None:
        """When retries stop for a notification created at ``created_at`` (None: no window
        beyond the ladder)."""
        if self.window is None:
            return None
        return created_at + timedelta(seconds=self.window * self.scale)


def schedule_from_settings(*, queue: bool = False) -> RetrySchedule:
    """The schedule the settings name: ``NOTIFY_RETRY_SCHEDULE``, or for a queue target
    (``queue``) ``NOTIFY_QUEUE_RETRY_SCHEDULE``. Raises ``ValueError`` on a malformed ladder."""
    setting = notify_settings.QUEUE_RETRY_SCHEDULE if queue else notify_settings.RETRY_SCHEDULE
    name = setting.strip()
    if name == "exponential":
        delays, window = exponential_ladder(base=15, factor=2, cap=4 * 3600, retries=14), 86400
    else:
        ladder, window = NAMED_LADDERS.get(name, (name, None))
        delays = tuple(parse_duration(step) for step in ladder.split(","))
    if notify_settings.RETRY_WINDOW is not None:
        window = notify_settings.RETRY_WINDOW
    return RetrySchedule(
        delays=delays,
        window=window,
        jitter=notify_settings.RETRY_JITTER,
        scale=notify_settings.TIME_SCALE,
    )
