"""The delivery engine of a worker process: many attempts in flight, none waiting on another.

Each worker process that runs a delivery task gets one ``Dispatcher`` (created on first use,
never shared across a fork) with two threads of its own:

- an **event loop** that holds every request in flight (up to ``MAX_IN_FLIGHT``), each
  bounded by ``ATTEMPT_DEADLINE``, on one aiohttp session (kept-alive connections);
- a **pump** that claims due attempts (``delivery.deliveries_claim``: the hinted ones first,
  then endpoints in turn, each within its cap), hands them to the loop, and records the
  finished ones in batches (``delivery.attempts_record``), claiming again as room frees up.

A queue target's attempt is published instead (``notifications.publisher``), and a third
thread, the ``AckReader``, records its subscribers' acknowledgements: started on the pump's
first turn when the deployment has queue targets at all, else with the first publication.

Celery tasks only wake the pump (``wake``), so a task takes microseconds and a slow receiver
never holds a Celery process: it holds one of its endpoint's few in-flight slots, at most for
the deadline. The pump sleeps when there is nothing due; it wakes on a task, on a finished
request, and when a retry it scheduled falls due. A process killed outright leaves its claims
to the sweeper (``NOTIFY_CLAIM_TIMEOUT``); a warm shutdown (``stop``) stops claiming, lets the
requests in flight finish and records them first.
"""

import asyncio
import heapq
import logging
import os
import queue
import threading
import time
from datetime import datetime

from django.db import DatabaseError, DataError, IntegrityError, close_old_connections, connections
from django.utils import timezone

from . import delivery, http, selectors
from .conf import notify_settings
from .publisher import AckReader
from .queues import is_queue_target

logger = logging.getLogger(__name__)

# Seconds the pump waits after a database error before trying again (the database may be
# restarting; its results stay queued and are recorded once it answers).
DATABASE_RETRY = 1.0
# Seconds between the pump's checks of its database connection (what Django does around each
# request): each check costs a query when CONN_HEALTH_CHECKS is on, so not on every turn.
CONNECTION_CHECK_EVERY = 1.0

_instance: "Dispatcher | None" = None
_instance_lock = threading.Lock()


def dispatcher() -> "Dispatcher":
    """This process's dispatcher, started on first use (a new one after a fork)."""
    global _instance
    with _instance_lock:
        if _instance is None or _instance.pid != os.getpid():
            _instance = Dispatcher()
            _instance.start()
        return _instance


def dispatcher_stop(timeout: float | None = None) -> None:
    """Stop this process's dispatcher if it runs: claim nothing more, finish and record what
    is in flight (at most ``timeout`` seconds; default the attempt deadline plus a margin)."""
    with _instance_lock:
        running = _instance if _instance is not None and _instance.pid == os.getpid() else None
    if running is not None:
        running.stop(timeout)


class Dispatcher:
    """See the module docstring. ``wake(hint)`` from any thread; everything else is the
    pump's own state, touched by the pump thread only."""

    def __init__(self):
        self.pid = os.getpid()
        self._wakeup = threading.Event()
        self._hints: queue.SimpleQueue = queue.SimpleQueue()
        self._finished: queue.SimpleQueue = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._session = None
        self._in_flight = 0
        self._unrecorded: list = []  # (claimed, result, started_at) waiting to be recorded
        self._oldest_unrecorded = 0.0
        self._retries: list[float] = []  # heap: monotonic times retries we scheduled fall due
        self._connection_checked = 0.0
        self._drained = False  # the last claim found less than it could take
        self._woken = False  # woken since the last claim began
        self._acks: AckReader | None = None  # reads acknowledgements once queue targets exist
        self._acks_looked = False  # whether the first turn looked for queue targets
        self._loop_thread = threading.Thread(
            target=self._run_loop, name="notifications-loop", daemon=True
        )
        self._pump_thread = threading.Thread(
            target=self._run_pump, name="notifications-pump", daemon=True
        )

    def start(self) -> None:
        self._loop_thread.start()
        self._session = asyncio.run_coroutine_threadsafe(self._new_session(), self._loop).result()
        self._pump_thread.start()

    def wake(self, hint=None) -> None:
        """Look for due attempts now; ``hint`` (a notification id) is claimed first."""
        if hint is not None:
            self._hints.put(hint)
        self._woken = True
        self._wakeup.set()

    def stop(self, timeout: float | None = None) -> None:
        if self._acks is not None:
            self._acks.stop()
        self._stopping.set()
        self._wakeup.set()
        self._pump_thread.join(timeout or notify_settings.ATTEMPT_DEADLINE + 5)
        asyncio.run_coroutine_threadsafe(self._session.close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)

    # --- The event loop thread ---------------------------------------------------------------

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    async def _new_session(self):
        return http.client_session(connect_timeout=notify_settings.CONNECT_TIMEOUT)

    # --- The pump thread ---------------------------------------------------------------------

    def _run_pump(self) -> None:
        while not (self._stopping.is_set() and self._in_flight == 0 and not self._unrecorded):
            try:
                self._turn()
            except DatabaseError:
                logger.exception("dispatcher: database error; retrying")
                connections.close_all()
                time.sleep(DATABASE_RETRY)
            except Exception:  # never let the pump die: every later delivery would wait
                logger.exception("dispatcher: unexpected error; retrying")
                time.sleep(DATABASE_RETRY)
        connections.close_all()

    def _turn(self) -> None:
        """One turn: collect finished requests, record them when due, claim and send more,
        then wait for the next reason to look again."""
        if not self._acks_looked:
            # At once, not with the first publication: acknowledgements of what an earlier
            # process published (before a deploy) would otherwise wait for a publication.
            if selectors.queue_endpoints_exist():
                self._acks_start()
            self._acks_looked = True
        self._collect()
        if self._unrecorded and self._record_due():
            self._record()
        if not self._stopping.is_set():
            self._claim_and_send()
        self._wait()

    def _collect(self) -> None:
        while True:
            try:
                finished = self._finished.get_nowait()
            except queue.Empty:
                return
            if not self._unrecorded:
                self._oldest_unrecorded = time.monotonic()
            self._unrecorded.append(finished)
            self._in_flight -= 1

    def _record_due(self) -> bool:
        return (
            len(self._unrecorded) >= notify_settings.RECORD_BATCH
            or time.monotonic() - self._oldest_unrecorded >= notify_settings.RECORD_DELAY
            or self._in_flight == 0
        )

    def _record(self) -> None:
        self._check_connection()
        try:
            recorded = delivery.attempts_record(self._unrecorded)
        except (DataError, IntegrityError):
            # Something in this batch the database refuses whatever we retry: record the
            # others one by one rather than hold every one of them (and this pump) forever.
            logger.exception("dispatcher: a batch could not be recorded; one by one instead")
            recorded = [r for finished in self._unrecorded for r in self._record_alone(finished)]
        self._unrecorded = []
        self._drained = False  # room freed up: look again
        for outcome in recorded:
            if outcome.next_attempt_at is not None:
                self._note_retry(outcome.next_attempt_at)

    @staticmethod
    def _record_alone(finished) -> list:
        """Record one attempt; one the database refuses is left claimed (logged), so the
        sweeper counts it abandoned after NOTIFY_CLAIM_TIMEOUT and it is retried."""
        try:
            return delivery.attempts_record([finished])
        except (DataError, IntegrityError):
            logger.exception(
                "dispatcher: attempt %s of %s not recordable",
                finished[0].number,
                finished[0].notification_id,
            )
            return []

    def _claim_and_send(self) -> None:
        room = notify_settings.MAX_IN_FLIGHT - self._in_flight - len(self._unrecorded)
        if room <= 0:  # hints and wake-ups wait for room
            return
        woken, self._woken = self._woken, False
        hints = self._take_hints()
        retry_due = bool(self._retries) and self._retries[0] <= time.monotonic()
        if self._drained and not (woken or hints or retry_due):
            return
        self._check_connection()
        limit = min(room, notify_settings.CLAIM_BATCH)
        while self._retries and self._retries[0] <= time.monotonic():
            heapq.heappop(self._retries)
        claimed = 0
        # Each endpoint's claims are sent as soon as they are committed: an error with a
        # later endpoint must not strand them (claimed, never sent, until the sweeper).
        for batch in delivery.claimed_batches(limit=limit, hints=hints):
            started = timezone.now()
            for attempt in batch:
                self._send(attempt, started)
            claimed += len(batch)
        self._drained = claimed < limit and not self._woken

    def _send(self, claimed: delivery.Claimed, started: datetime) -> None:
        if self._acks is None and is_queue_target(claimed.url):
            self._acks_start()
        self._in_flight += 1
        future = asyncio.run_coroutine_threadsafe(
            delivery.attempt_send(self._session, claimed), self._loop
        )

        def finished(done):
            try:
                result = done.result()
            except BaseException as exc:  # cancelled at shutdown, or a bug: still recorded
                result = http.PostResult(None, "", f"not sent: {type(exc).__name__}", 0)
            self._finished.put((claimed, result, started))
            self._wakeup.set()

        future.add_done_callback(finished)

    def _acks_start(self) -> None:
        self._acks = AckReader()
        self._acks.start()

    def _take_hints(self) -> list:
        hints = []
        while len(hints) < notify_settings.CLAIM_BATCH:
            try:
                hints.append(self._hints.get_nowait())
            except queue.Empty:
                break
        return hints

    def _note_retry(self, due: datetime) -> None:
        """Wake when a retry we scheduled falls due (the sweeper would, but later)."""
        heapq.heappush(
            self._retries, time.monotonic() + max(0.0, (due - timezone.now()).total_seconds())
        )

    def _check_connection(self) -> None:
        if time.monotonic() - self._connection_checked >= CONNECTION_CHECK_EVERY:
            close_old_connections()
            self._connection_checked = time.monotonic()

    def _wait(self) -> None:
        """Sleep until woken, until unrecorded results are due for recording, or until a
        retry falls due (while there is room to send it); not at all while there may be
        more to claim and room for it."""
        busy = self._in_flight + len(self._unrecorded) >= notify_settings.MAX_IN_FLIGHT
        if not (self._stopping.is_set() or self._drained or busy):
            return
        deadlines = [self._retries[0]] if self._retries and not busy else []
        if self._unrecorded:
            deadlines.append(self._oldest_unrecorded + notify_settings.RECORD_DELAY)
        if self._stopping.is_set():
            deadlines.append(time.monotonic() + 0.05)
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        self._wakeup.wait(timeout)
        self._wakeup.clear()
