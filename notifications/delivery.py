"""Delivery in three steps that any number of workers run at once: claim due notifications,
send them (``notifications.http``), record what each attempt returned.

- **Claim.** An attempt is claimed in the database before anything is sent: its row moves
  ``pending → sending`` with ``attempt_count + 1`` in one ``UPDATE … RETURNING``, so a row is
  sent by one worker once per claim, whoever else is looking. Endpoints are served in turn
  (least recently served first, their rows locked with ``SKIP LOCKED``), each up to its cap
  on requests in flight (``notifications.circuit.in_flight_cap``: none while its circuit is
  open, one probe when half-open), so one endpoint's backlog or slowness never holds
  another's deliveries back.
- **Send.** Concurrently, each within ``ATTEMPT_DEADLINE``.
- **Record.** Many attempts in one transaction: the attempt rows, each notification moved to
  delivered, its next attempt (the retry schedule, a 429/503's ``Retry-After`` honoured within
  [1×, 2×] the scheduled delay) or exhausted, and each endpoint's health. A result is only
  applied while its claim stands (same attempt number, still in flight), so an attempt whose
  claim the sweeper gave up on cannot overwrite a newer one.

``notifications.dispatcher`` runs these steps continuously in each worker process;
``deliveries_run`` runs them once, synchronously (tests, a shell).
"""

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from core.clock import database_now

from . import circuit, http, metrics, signing
from .conf import notify_settings
from .endpoints import notifications_adopt
from .models import DeliveryAttempt, Endpoint, Notification
from .publisher import message_headers, publisher
from .queues import is_queue_target
from .retry import schedule_from_settings
from .secrets import sender_secrets

logger = logging.getLogger(__name__)
State = Notification.State


@dataclass(frozen=True)
class Claimed:
    """One claimed attempt, signed and ready to send: attempt ``number`` of a notification.
    ``headers`` is None when it could not be signed (``sign_error`` says why)."""

    notification_id: object
    number: int
    endpoint_id: int
    created_at: datetime
    url: str
    body: bytes
    headers: dict | None
    sign_error: str = ""


@dataclass(frozen=True)
class Recorded:
    """What recording an attempt did: the notification's new state and, while it is
    pending, when its next attempt is due (None once it is final or its claim was lost)."""

    notification_id: object
    state: str | None
    next_attempt_at: datetime | None = None


# --- Claim ---------------------------------------------------------------------------------


def deliveries_claim(*, limit: int, hints=(), now: datetime | None = None) -> list[Claimed]:
    """Claim up to ``limit`` due attempts (see ``claimed_batches``), as one list."""
    return [c for batch in claimed_batches(limit=limit, hints=hints, now=now) for c in batch]


def claimed_batches(*, limit: int, hints=(), now: datetime | None = None) -> Iterator[list]:
    """Claim up to ``limit`` due attempts, yielding each endpoint's as soon as its claim has
    committed (so an error with a later endpoint cannot strand claims already made): the
    notifications named in ``hints`` first (a fresh notification's fast path), then the
    endpoints with due work in turn.

    A hint that names no notification at all is logged as an error: its message came from
    another deployment sharing the broker (see ``DEPLOYMENT_NAMESPACE``).
    """
    now = now or database_now()  # every host claims by one clock (core/clock.py)
    left = limit
    for endpoint_id, first in _hinted_endpoints(list(dict.fromkeys(hints))):
        if left <= 0:
            return
        batch = _claim_endpoint(endpoint_id, limit=left, now=now, first=first)
        left -= len(batch)
        yield batch
    for endpoint_id in _endpoints_in_turn(now) if left > 0 else ():
        if left <= 0:
            return
        batch = _claim_endpoint(endpoint_id, limit=left, now=now)
        left -= len(batch)
        yield batch


def _hinted_endpoints(hints: list) -> list[tuple[int, list]]:
    """``[(endpoint id, [hinted notification ids])]`` for the hints that exist."""
    pks = [_as_pk(hint) for hint in hints]
    rows = Notification.objects.filter(pk__in=[pk for pk in pks if pk])
    found = dict(rows.values_list("pk", "endpoint_id"))
    if None in found.values():  # written by the previous release, during a rolling deploy
        notifications_adopt(limit=len(found))
        found = dict(rows.values_list("pk", "endpoint_id"))
    _warn_unknown([hint for hint, pk in zip(hints, pks, strict=True) if pk not in found])
    grouped: dict = defaultdict(list)
    for pk, endpoint_id in found.items():
        grouped[endpoint_id].append(pk)
    return list(grouped.items())


def _endpoints_in_turn(now: datetime) -> list[int]:
    """Endpoints with due work that may be sent to, least recently served first.

    One with ``ENDPOINT_MAX_IN_FLIGHT`` requests in flight, or a half-open one with its
    probe in flight, is left out: visiting it would cost a transaction per pump cycle and
    claim nothing, and a hanging endpoint stays at its cap until its first deadline (bench
    "noisy neighbour": the healthy burst's rate).
    """
    due = Notification.objects.filter(
        endpoint=OuterRef("pk"), state=State.PENDING, next_attempt_at__lte=now
    )
    sending = Notification.objects.filter(endpoint=OuterRef("pk"), state=State.SENDING)
    cap = max(1, notify_settings.ENDPOINT_MAX_IN_FLIGHT)  # a cap of 0 claims nothing anyway
    full = Exists(sending[cap - 1 : cap])  # a cap-th row in flight
    probing = Q(state=Endpoint.State.HALF_OPEN) & Exists(sending)  # its cap is one probe
    candidates = (
        Endpoint.objects.filter(_serveable(now))
        .filter(Exists(due))
        .exclude(full | probing)
        .order_by(F("last_claimed_at").asc(nulls_first=True))
        .values_list("pk", flat=True)[: notify_settings.CLAIM_BATCH]
    )
    return list(candidates)


def _serveable(now: datetime) -> Q:
    """Endpoints that may be sent something at ``now``: closed, or open past its wait."""
    waited = Q(state__in=[Endpoint.State.OPEN, Endpoint.State.HALF_OPEN], retry_at__lte=now)
    return Q(state=Endpoint.State.CLOSED) | waited


def _claim_endpoint(endpoint_id, *, limit: int, now: datetime, first=()) -> list[Claimed]:
    """Claim up to ``limit`` of one endpoint's due notifications (``first`` before the
    rest), within its room, under a lock on its row; every row claimed is locked first
    (``SKIP LOCKED``: one another worker holds is left to it). Another worker holding the
    endpoint's lock is serving it right now: skipped. An endpoint with no room goes to the
    back of the turn all the same, so endpoints at their cap never crowd out the others."""
    with transaction.atomic():
        endpoint = (
            Endpoint.objects.select_for_update(skip_locked=True).filter(pk=endpoint_id).first()
        )
        if endpoint is None:
            return []
        health = _health(endpoint)
        sending = Notification.objects.filter(endpoint=endpoint, state=State.SENDING).count()
        room = min(limit, circuit.in_flight_cap(health, now) - sending)
        rows = _claim_rows(_due_ids(endpoint, first, room, now), now) if room > 0 else []
        # A probe claimed for an open circuit makes it half-open.
        state = circuit.probing(health, now).state if rows else endpoint.state
        Endpoint.objects.filter(pk=endpoint.pk).update(last_claimed_at=now, state=state)
    return [_prepared(row, now) for row in rows]


def _due_ids(endpoint: Endpoint, first, room: int, now: datetime) -> list:
    """Up to ``room`` ids of the endpoint's due notifications, ``first`` ones before the
    others, each row locked (those another worker has locked are skipped)."""
    due = Notification.objects.filter(
        endpoint=endpoint, state=State.PENDING, next_attempt_at__lte=now
    ).select_for_update(skip_locked=True)
    ids = list(due.filter(pk__in=list(first)).values_list("pk", flat=True)[:room])
    if len(ids) < room:
        others = due.exclude(pk__in=ids).order_by("next_attempt_at")
        ids += list(others.values_list("pk", flat=True)[: room - len(ids)])
    return ids


def _claim_rows(ids: list, now: datetime) -> list[Notification]:
    """``pending → sending`` for those of ``ids`` still pending and due, in one
    ``UPDATE … RETURNING`` (PostgreSQL; SQLite 3.35+): the claimed rows."""
    if not ids:
        return []
    meta = Notification._meta
    quote = connection.ops.quote_name

    def prep(name, value):
        return meta.get_field(name).get_db_prep_value(value, connection)

    count = quote("attempt_count")
    marks = ", ".join(["%s"] * len(ids))
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {quote('state')} = %s, {quote('claimed_at')} = %s, "
        f"{count} = {count} + 1 "
        f"WHERE {quote('id')} IN ({marks}) AND {quote('state')} = %s "
        f"AND {quote('next_attempt_at')} <= %s "
        f"RETURNING {', '.join(quote(field.column) for field in meta.concrete_fields)}"
    )
    params = [
        State.SENDING,
        prep("claimed_at", now),
        *(prep("id", pk) for pk in ids),
        State.PENDING,
        prep("next_attempt_at", now),
    ]
    # raw() maps the returned columns onto Notifications with the backend's converters.
    return list(Notification.objects.raw(sql, params, using=connection.alias))


def _prepared(notification: Notification, now: datetime) -> Claimed:
    """The claimed attempt with its Standard Webhooks headers, signed at ``now``."""
    headers, error = None, ""
    try:
        secrets = sender_secrets(notification.sender_key)
        headers = signing.signed_headers(
            webhook_id=notification.webhook_id,
            body=notification.body,
            secrets=secrets,
            timestamp=now,
        )
    except Exception as exc:  # a sender without secrets fails its own attempt, not the batch
        logger.exception("cannot sign notification %s", notification.pk)
        error = f"not sent: cannot sign ({type(exc).__name__}: {exc})"
    return Claimed(
        notification_id=notification.pk,
        number=notification.attempt_count,
        endpoint_id=notification.endpoint_id,
        created_at=notification.created_at,
        url=notification.target_url,
        body=notification.body.encode(),
        headers=headers,
        sign_error=error[:255],
    )


# --- Send ----------------------------------------------------------------------------------


async def attempt_send(session, claimed: Claimed) -> http.PostResult:
    """Send one claimed attempt (an unsigned one fails without a request): POST it, or for a
    queue target publish it on this process's publisher thread (notifications/publisher.py)."""
    if claimed.headers is None:
        return http.PostResult(None, "", claimed.sign_error, 0)
    if is_queue_target(claimed.url):
        return await asyncio.wrap_future(publisher().submit(claimed))
    return await http.post(
        session,
        claimed.url,
        body=claimed.body,
        headers=claimed.headers,
        deadline=notify_settings.ATTEMPT_DEADLINE,
        excerpt_bytes=notify_settings.RESPONSE_EXCERPT_BYTES,
    )


# --- Record --------------------------------------------------------------------------------


def attempts_record(results: list[tuple[Claimed, http.PostResult, datetime]]) -> list[Recorded]:
    """Record finished attempts, ``(claimed, result, started_at)`` each, in one transaction:
    the attempt rows, each notification's next state, each endpoint's health. Endpoints that
    this disables are announced once the transaction commits (``notifications.alerts``).

    Locks are taken in one order everywhere, so two writers never wait on each other in
    opposite orders: the endpoints' rows (in id order, as a claim locks its endpoint before
    its notifications), then the notifications' (in id order, as the sweeper locks one
    before inserting its attempt row), then the attempt rows.
    """
    now = database_now()  # retries fall due by the claims' clock (core/clock.py)
    outcomes = defaultdict(list)  # endpoint id → succeeded, per attempt it was sent
    for claimed, result, _ in results:
        # An unsigned attempt never reached the endpoint; a queue target has no circuit (a
        # publish succeeds or fails with the broker, which every target shares).
        if claimed.headers is not None and not is_queue_target(claimed.url):
            outcomes[claimed.endpoint_id].append(result.ok)
    with transaction.atomic():
        endpoints = Endpoint.objects.select_for_update().filter(pk__in=outcomes).order_by("pk")
        endpoints = {endpoint.pk: endpoint for endpoint in endpoints}
        ids = [claimed.notification_id for claimed, _, _ in results]
        list(
            Notification.objects.select_for_update()
            .filter(pk__in=ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        DeliveryAttempt.objects.bulk_create(
            [_attempt_row(claimed, result, started) for claimed, result, started in results],
            # Attempt ``number`` may have a row already if its claim was released as orphaned
            # meanwhile: the real result replaces it.
            update_conflicts=True,
            unique_fields=["notification", "number"],
            update_fields=[
                "started_at",
                "duration_ms",
                "status_code",
                "request_headers",
                "response_excerpt",
                "error",
                "succeeded",
            ],
        )
        recorded = _move_on(results, now)
        for endpoint_id, endpoint in endpoints.items():
            _endpoint_after(endpoint, outcomes[endpoint_id], now)
    metrics.attempts_observe(results)  # once committed: a rolled-back batch is not counted
    return recorded


def _attempt_row(claimed: Claimed, result: http.PostResult, started: datetime):
    if not claimed.headers:  # an unsigned attempt sent nothing: no headers to show
        sent = {}
    elif is_queue_target(claimed.url):
        sent = message_headers(claimed.headers, number=claimed.number)
    else:
        sent = http.headers_sent(claimed.headers)
    return DeliveryAttempt(
        notification_id=claimed.notification_id,
        number=claimed.number,
        started_at=started,
        duration_ms=result.duration_ms,
        status_code=result.status_code,
        request_headers=sent,
        response_excerpt=result.excerpt,
        error=result.error,
        succeeded=result.ok,
    )


# What recording an attempt sets on its notification (besides clearing its claim): always
# these, and these two only when next_state gives them (else the row keeps its own).
_SET_FIELDS = ("state", "last_status_code", "last_error")
_SET_IF_GIVEN = ("next_attempt_at", "delivered_at")


def _move_on(results: list, now: datetime) -> list[Recorded]:
    """Move each notification on after its attempt, unless its claim was lost meanwhile
    (released as orphaned, and perhaps claimed again)."""
    moves = {}
    for claimed, result, _ in results:
        fields = next_state(
            created_at=claimed.created_at,
            number=claimed.number,
            result=result,
            now=now,
            queue=is_queue_target(claimed.url),
        )
        fields.update(last_status_code=result.status_code, last_error=result.error)
        moves[claimed.notification_id] = (claimed.number, fields)
    still_ours = _update_claimed(moves)
    recorded = []
    for notification_id, (number, fields) in moves.items():
        if notification_id not in still_ours:
            logger.warning(
                "attempt %s of %s finished after its claim was released", number, notification_id
            )
            recorded.append(Recorded(notification_id, None))
            continue
        pending = fields["state"] == State.PENDING
        due = fields.get("next_attempt_at") if pending else None
        recorded.append(Recorded(notification_id, fields["state"], due))
    return recorded


def _update_claimed(moves: dict) -> set:
    """``{id: (attempt number, fields)}``: each row still claimed for that attempt gets its
    fields and loses its claim, in one ``WITH … UPDATE … FROM … RETURNING`` (PostgreSQL;
    SQLite 3.35+), where an UPDATE per row was most of a batch's cost (bench "Where the CPU
    goes"). Returns the ids updated."""
    meta = Notification._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    names = ["id", "attempt_count", *_SET_FIELDS, *_SET_IF_GIVEN]
    fields = [meta.get_field(name) for name in names]
    cast = connection.vendor == "postgresql"  # there, VALUES of NULLs need their types
    row = "(" + ", ".join(f"%s::{f.db_type(connection)}" if cast else "%s" for f in fields) + ")"
    params = []
    for notification_id, (number, moved) in moves.items():
        values = {"id": notification_id, "attempt_count": number, **moved}
        params += [f.get_db_prep_value(values.get(f.name), connection) for f in fields]
    assignments = [f"{quote(name)} = v.{quote(name)}" for name in _SET_FIELDS]
    assignments += [
        f"{quote(name)} = COALESCE(v.{quote(name)}, {table}.{quote(name)})"
        for name in _SET_IF_GIVEN
    ]
    sql = (
        f"WITH v ({', '.join(quote(name) for name in names)}) AS "
        f"(VALUES {', '.join([row] * len(moves))}) "
        f"UPDATE {table} SET {', '.join(assignments)}, {quote('claimed_at')} = NULL FROM v "
        f"WHERE {table}.{quote('id')} = v.{quote('id')} "
        f"AND {table}.{quote('attempt_count')} = v.{quote('attempt_count')} "
        f"AND {table}.{quote('state')} = %s RETURNING {table}.{quote('id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, State.SENDING])
        returned = cursor.fetchall()
    return {meta.pk.to_python(value) for (value,) in returned}


def next_state(
    *, created_at: datetime, number: int, result, now: datetime, queue: bool = False
) -> dict:
    """The notification's new fields after attempt ``number`` (a ``PostResult``, or None for
    an attempt lost with its worker): delivered, its next attempt due, or exhausted. A queue
    target (``queue``) follows ``NOTIFY_QUEUE_RETRY_SCHEDULE``: after a publish the broker
    accepted, its next attempt is the publication again should no acknowledgement come
    first (notifications/publisher.py).

    A 429 or 503 with ``Retry-After`` moves the next attempt to that time, kept within
    [1×, 2×] the scheduled delay (as Svix does) and never past the retry window.
    """
    if result is not None and result.ok:
        return {"state": State.DELIVERED, "delivered_at": now, "claimed_at": None}
    schedule = schedule_from_settings(queue=queue)
    due = schedule.next_attempt_at(attempts_made=number, created_at=created_at, now=now)
    if due is None:
        return {"state": State.EXHAUSTED, "claimed_at": None}
    if result is not None and result.retry_after is not None:
        delay = (due - now).total_seconds()
        asked = now + timedelta(seconds=min(max(result.retry_after, delay), 2 * delay))
        end = schedule.window_end(created_at)
        due = asked if end is None else min(asked, end)
    return {"state": State.PENDING, "next_attempt_at": due, "claimed_at": None}


def _endpoint_after(endpoint: Endpoint, outcomes: list[bool], now: datetime) -> None:
    """Count ``outcomes`` (succeeded or not, in order) into the (locked) endpoint's health."""
    before = _health(endpoint)
    health = before
    for succeeded in outcomes:
        health = circuit.after_attempt(health, succeeded=succeeded, now=now)
    changes = asdict(health)
    changes.update(
        attempts_total=F("attempts_total") + len(outcomes),
        failures_total=F("failures_total") + outcomes.count(False),
    )
    if any(outcomes):
        changes["last_success_at"] = now
    if not all(outcomes):
        changes["last_failure_at"] = now
    if health.state != before.state:
        logger.warning("endpoint %s: circuit %s → %s", endpoint, before.state, health.state)
        if health.state == circuit.DISABLED:
            changes["disabled_at"] = now
            transaction.on_commit(lambda: _announce_disabled(endpoint.pk), robust=True)
    Endpoint.objects.filter(pk=endpoint.pk).update(**changes)


def _announce_disabled(endpoint_id) -> None:
    """Hand the alerts to a Celery task: an email server that hangs must not hold the
    worker process's deliveries (the pump records on this thread)."""
    from .tasks import announce_endpoint_disabled

    announce_endpoint_disabled.apply_async(args=(endpoint_id,))


def _health(endpoint: Endpoint) -> circuit.Health:
    return circuit.Health(**{f.name: getattr(endpoint, f.name) for f in fields(circuit.Health)})


# --- All three, once -----------------------------------------------------------------------


def deliveries_run(*, limit: int = 1, hints=()) -> list[Recorded]:
    """Claim up to ``limit`` due attempts (``hints`` first), send them concurrently, record
    them; what was recorded. Synchronous: for tests and a shell, not for the workers."""
    claimed = deliveries_claim(limit=limit, hints=hints)
    if not claimed:
        return []
    started = timezone.now()
    results = asyncio.run(_send_all(claimed))
    return attempts_record([(c, r, started) for c, r in zip(claimed, results, strict=True)])


async def _send_all(claimed: list[Claimed]) -> list[http.PostResult]:
    async with http.client_session(connect_timeout=notify_settings.CONNECT_TIMEOUT) as session:
        return await asyncio.gather(*(attempt_send(session, c) for c in claimed))


def _warn_unknown(missing: list) -> None:
    """A delivery for a notification this database does not have: nothing here deletes an
    undelivered one, so the message came from another deployment sharing the broker, whose
    own notification now waits for its sweeper."""
    for notification_id in missing:
        logger.error(
            "delivery task for notification %s, which this database does not have: another "
            "deployment's message? Give each deployment its own DEPLOYMENT_NAMESPACE "
            "(README 'Scaling out').",
            notification_id,
        )


def _as_pk(value):
    """A hint as a primary key; None for a value that cannot be one."""
    try:
        return Notification._meta.pk.to_python(value)
    except ValidationError:
        return None
