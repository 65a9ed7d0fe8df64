"""The handler scenario 19's subscribers run (``notifications_consume --handler
chaos.subscriber.consume``): accounts' own, ``accounts.queue_receiver.notification_consume``,
with each message written to the subscriber's log before and after, and a pause after it
applied, before the subscriber acknowledges it.

The pause keeps messages in a subscriber's hands, applied but not acknowledged, so that a
SIGKILL finds some (as the receiver proxy's latency does for HTTP in scenario 1); the lines
tell which messages the broker handed out twice. Each line, on stdout (the subscriber's log):
``chaos-subscriber taking <webhook-id> attempt <n>`` then ``chaos-subscriber took <webhook-id>
attempt <n>``; a message is one publication, ``(webhook-id, attempt number)``.
"""

import re
import time
from collections import Counter
from pathlib import Path

LATENCY = 0.1  # seconds a message is held after it was applied, before it is acknowledged
_LINE = re.compile(r"^chaos-subscriber (taking|took) (\S+) attempt (\d+)$", re.MULTILINE)


def consume(body: bytes, headers: dict) -> tuple[bool, str]:
    """accounts' handler (same arguments and answer), logged and paused as the module says."""
    from accounts.queue_receiver import notification_consume

    message = f"{headers.get('webhook-id')} attempt {headers.get('attempt')}"
    print(f"chaos-subscriber taking {message}", flush=True)
    answer = notification_consume(body, headers)
    time.sleep(LATENCY)
    print(f"chaos-subscriber took {message}", flush=True)
    return answer


def taken(log_path: Path) -> Counter:
    """``{(webhook-id, attempt): times}`` of the messages a subscriber's log says it took in
    hand (repeats counted: the same message given to it again)."""
    return Counter(message for verb, message in _lines(log_path) if verb == "taking")


def in_hand(log_path: Path) -> set:
    """The messages a subscriber took and never finished: those it held when it died."""
    lines = _lines(log_path)
    return {m for verb, m in lines if verb == "taking"} - {m for verb, m in lines if verb == "took"}


def _lines(log_path: Path) -> list[tuple[str, tuple[str, int]]]:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:  # not started yet
        return []
    return [(verb, (wid, int(n))) for verb, wid, n in _LINE.findall(text)]
