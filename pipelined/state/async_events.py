"""Queued asynchronous invocations: each event is on disk from its 202 until it is settled."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelined.state.db import Connection


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """One accepted `Event` invocation and how far it has come."""

    id: int
    request_id: str
    function: str
    received_at: float
    # Invocations that finished with an error (a run cut short by a crash is not counted: it runs again).
    attempts: int
    next_attempt_at: float
    last_error: Mapping[str, Any] | None = None
    # An EventBridge rule's retry policy and dead letter (core/eventbridge_events.RulePolicy.to_json()).
    policy: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EventBody:
    """The payload (as received, JSON text) and the client context of a queued event."""

    payload: str
    client_context: str | None
    # The X-Ray trace header it arrived with, if any.
    trace: str | None = None


def _queued(row: Any) -> QueuedEvent:
    return QueuedEvent(
        id=row["id"],
        request_id=row["request_id"],
        function=row["function"],
        received_at=row["received_at"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=json.loads(row["last_error"]) if row["last_error"] else None,
        policy=json.loads(row["policy"]) if row["policy"] else None,
    )


_COLUMNS = "id, request_id, function, received_at, attempts, next_attempt_at, last_error, policy"
# Events a cluster member takes over from members that died, per look.
ORPHANS_PER_CLAIM = 100


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be queued."""

    request_id: str
    function: str
    payload: str
    client_context: str | None = None
    policy: Mapping[str, Any] | None = None
    trace: str | None = None


class AsyncEventStore:
    """The `async_events` table; each method is one transaction.

    In a cluster (PostgreSQL, `claim_as`) each event is claimed by one member: the one that accepted it,
    or, once that member's claim lapsed (it died), the member that took it with FOR UPDATE SKIP LOCKED.
    A member runs only the events it claims; the heartbeat renews its claims (`renew_claims`).
    """

    def __init__(self, connection: Connection) -> None:
        self._db = connection
        self._member: str | None = None
        self._claim_for = 0.0
        # Seconds between looks for events whose claim lapsed (None: no other member can leave any).
        self.orphan_interval: float | None = None
        self._orphans_at = 0.0

    def claim_as(self, member: str, claim_for: float) -> None:
        """Share the queue with other members: claim events as `member` for `claim_for` seconds."""
        self._member, self._claim_for = member, claim_for
        self.orphan_interval = max(1.0, claim_for / 3)

    async def renew_claims(self) -> None:
        """Extend the claims of this member (its heartbeat)."""
        if self._member is not None:
            await self._db.execute(
                "UPDATE async_events SET claim_expires_at = clock_timestamp() + make_interval(secs => ?)"
                " WHERE claimed_by = ?",
                (self._claim_for, self._member),
            )

    async def release_claims(self) -> None:
        """Hand this member's events back to the queue at once (stopping)."""
        if self._member is not None:
            await self._db.execute(
                "UPDATE async_events SET claimed_by = NULL, claim_expires_at = NULL WHERE claimed_by = ?",
                (self._member,),
            )

    async def orphans_due(self) -> list[QueuedEvent]:
        """`claim_orphans`, at most once per `orphan_interval` (the queue asks on every wake-up)."""
        now = time.monotonic()
        if self.orphan_interval is None or now < self._orphans_at + self.orphan_interval:
            return []
        self._orphans_at = now
        return await self.claim_orphans()

    async def claim_orphans(self) -> list[QueuedEvent]:
        """Claim events no live member claims (their member died or left); oldest first."""
        if self._member is None:
            return []
        async with self._db.execute(
            "UPDATE async_events SET claimed_by = ?, claim_expires_at = clock_timestamp()"
            " + make_interval(secs => ?) WHERE id IN (SELECT id FROM async_events WHERE claimed_by IS NULL"
            " OR claim_expires_at < clock_timestamp() ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED)"
            f" RETURNING {_COLUMNS}",
            (self._member, self._claim_for, ORPHANS_PER_CLAIM),
        ) as cursor:
            rows = await cursor.fetchall()
        return sorted((_queued(r) for r in rows), key=lambda e: e.id)

    async def add(
        self,
        request_id: str,
        function: str,
        payload: str,
        client_context: str | None = None,
        trace: str | None = None,
    ) -> QueuedEvent:
        """Persist a new event, due at once."""
        now = time.time()
        if self._member is not None:
            statement = self._db.execute(
                "INSERT INTO async_events (request_id, function, payload, client_context, received_at,"
                " next_attempt_at, trace, claimed_by, claim_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?,"
                " clock_timestamp() + make_interval(secs => ?)) RETURNING id",
                (
                    request_id,
                    function,
                    payload,
                    client_context,
                    now,
                    now,
                    trace,
                    self._member,
                    self._claim_for,
                ),
            )
        else:
            statement = self._db.execute(
                "INSERT INTO async_events (request_id, function, payload, client_context, received_at,"
                " next_attempt_at, trace) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (request_id, function, payload, client_context, now, now, trace),
            )
        async with statement as cursor:
            row = await cursor.fetchone()
        return QueuedEvent(int(row[0]), request_id, function, now, 0, now)

    async def add_many(self, events: list[NewEvent]) -> list[QueuedEvent]:
        """Persist several new events in one statement (so all or none), due at once."""
        if not events:
            return []
        now = time.time()
        # In a cluster the accepting member claims them (the heartbeat renews its claims).
        claim = ", ?, clock_timestamp() + make_interval(secs => ?)" if self._member is not None else ""
        rows = ", ".join(f"(?, ?, ?, ?, ?, ?, ?, ?{claim})" for _ in events)
        values: list[object] = []
        for event in events:
            policy = json.dumps(event.policy) if event.policy is not None else None
            values += [
                event.request_id,
                event.function,
                event.payload,
                event.client_context,
                now,
                now,
                policy,
                event.trace,
                *((self._member, self._claim_for) if claim else ()),
            ]
        claimed = ", claimed_by, claim_expires_at" if claim else ""
        async with self._db.execute(
            "INSERT INTO async_events (request_id, function, payload, client_context, received_at,"
            f" next_attempt_at, policy, trace{claimed}) VALUES {rows} RETURNING id, request_id",
            values,
        ) as cursor:
            ids = {row[1]: int(row[0]) for row in await cursor.fetchall()}
        return [
            QueuedEvent(ids[e.request_id], e.request_id, e.function, now, 0, now, None, e.policy)
            for e in events
        ]

    async def pending(self) -> list[QueuedEvent]:
        """Every event not yet settled, oldest first (without their bodies); in a cluster, those it claims."""
        if self._member is not None:
            return await self.claim_orphans()
        async with self._db.execute(f"SELECT {_COLUMNS} FROM async_events ORDER BY id") as cursor:
            rows = await cursor.fetchall()
        return [_queued(r) for r in rows]

    async def body(self, event_id: int) -> EventBody | None:
        """The payload and client context of one event (None once settled, or claimed by another member)."""
        mine = " AND claimed_by = ?" if self._member is not None else ""
        async with self._db.execute(
            "SELECT payload, client_context, trace FROM async_events WHERE id = ?" + mine,
            (event_id, self._member) if mine else (event_id,),
        ) as cursor:
            row = await cursor.fetchone()
        return EventBody(row[0], row[1], row[2]) if row else None

    async def failed_attempt(
        self, event_id: int, next_attempt_at: float, error: Mapping[str, Any] | None
    ) -> None:
        """Count one failed invocation and set when the next one is due."""
        await self._db.execute(
            "UPDATE async_events SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
            " WHERE id = ?",
            (next_attempt_at, json.dumps(error) if error is not None else None, event_id),
        )

    async def postpone(self, event_id: int, next_attempt_at: float) -> None:
        """Try again later without counting an attempt (no such function, or nowhere to park it)."""
        await self._db.execute(
            "UPDATE async_events SET next_attempt_at = ? WHERE id = ?", (next_attempt_at, event_id)
        )

    async def delete(self, event_id: int) -> None:
        """Forget a settled event."""
        await self._db.execute("DELETE FROM async_events WHERE id = ?", (event_id,))

    async def count(self) -> int:
        """How many events are queued."""
        async with self._db.execute("SELECT COUNT(*) FROM async_events") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0
