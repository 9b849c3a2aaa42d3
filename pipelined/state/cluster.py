"""A member of a cluster: its heartbeat and its leases on stream shards and schedules, in PostgreSQL.

Every member runs the same configuration, so every member's stream engine wants every shard. A lease
(`leases` row: owner, counter, expiry in the database's clock) says who reads it. The heartbeat renews
this member's leases and learns how many members are alive; a shard is taken when it is free (no owner,
or its owner let it expire: a takeover) while this member holds fewer than its share, or, to balance, at
most one per heartbeat from the most loaded member while the spread is over one (a steal). Each take
raises the counter; a checkpoint is written only under the counter it was read with (`fenced`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from pipelined.observe.cluster_metrics import ClusterMetrics
from pipelined.state.db import DATABASE_ERRORS
from pipelined.state.postgres import Database

log = logging.getLogger("pipelined.cluster")

# The shard name of a schedule's leadership lease.
SCHEDULE = "*schedule*"
# Members silent this many lease durations are forgotten (until then `cluster status` shows them).
FORGET_AFTER = 60


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """One lease as `pipelined cluster status` shows it."""

    source: str
    shard: str
    owner: str | None
    counter: int
    expires_in: float


@dataclass(frozen=True, slots=True)
class MemberRow:
    """One member and how long ago it was last heard from."""

    member_id: str
    heartbeat_age: float
    leaving: bool


class ClusterLeases:
    """This member's leases (the `Leases` interface) over the shared database, renewed by a heartbeat."""

    shared = True

    def __init__(
        self,
        db: Database,
        member_id: str,
        lease_duration: float,
        renew_every: float,
        metrics: ClusterMetrics | None = None,
    ) -> None:
        self._db = db
        self.member_id: str | None = member_id
        self._me = member_id
        self.lease_duration = lease_duration
        self.renew_every = renew_every
        self._metrics = metrics
        # (source, shard) -> the counter this member took the lease with.
        self._held: dict[tuple[str, str], int] = {}
        # Monotonic time until which the leases renewed last are surely still ours.
        self._valid_until = 0.0
        self._members = 1
        self._stole_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self.reachable = True
        # Renewed with the leases (the claims of queued events), and given up with them.
        self.heartbeat_hooks: list[Callable[[], Awaitable[None]]] = []
        self.leaving_hooks: list[Callable[[], Awaitable[None]]] = []

    @property
    def retry_interval(self) -> float:
        """How often a reader waiting for a lease asks again."""
        return min(1.0, self.renew_every)

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Join the cluster (one heartbeat now) and keep renewing."""
        await self._heartbeat()
        self._task = asyncio.create_task(self._beat(), name="cluster:heartbeat")
        log.info(
            "cluster member %s joined (%d live member(s); lease %.1fs, renewed every %.1fs)",
            self._me,
            self._members,
            self.lease_duration,
            self.renew_every,
        )

    async def stop(self) -> None:
        """Give every lease up at once and leave (SIGTERM: no one waits for them to expire)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        held, self._held = list(self._held), {}
        self._set_gauges()
        try:
            await self._db.execute(
                "UPDATE leases SET owner = NULL, expires_at = clock_timestamp() WHERE owner = ?",
                (self._me,),
            )
            await self._db.execute("DELETE FROM cluster_members WHERE member_id = ?", (self._me,))
            for hook in self.leaving_hooks:
                await hook()
        except DATABASE_ERRORS as exc:
            log.warning("cluster member %s could not release %d lease(s): %s", self._me, len(held), exc)
            return
        log.info("cluster member %s left; released %d lease(s)", self._me, len(held))

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.renew_every)
            with contextlib.suppress(*DATABASE_ERRORS):
                await self._heartbeat()

    async def _heartbeat(self) -> None:
        """Renew this member's heartbeat and leases; notice the leases lost; count the live members."""
        started = time.monotonic()
        before = dict(self._held)
        try:
            await self._db.execute(
                "INSERT INTO cluster_members (member_id, started_at, heartbeat_at) VALUES"
                " (?, ?, clock_timestamp()) ON CONFLICT (member_id) DO UPDATE SET heartbeat_at ="
                " clock_timestamp()",
                (self._me, time.time()),
            )
            async with self._db.execute(
                "UPDATE leases SET expires_at = clock_timestamp() + make_interval(secs => ?)"
                " WHERE owner = ? RETURNING source, shard, counter",
                (self.lease_duration, self._me),
            ) as cursor:
                renewed = {(r[0], r[1]): int(r[2]) for r in await cursor.fetchall()}
            for hook in self.heartbeat_hooks:
                await hook()
            async with self._db.execute(
                "SELECT count(*) FROM cluster_members WHERE heartbeat_at > clock_timestamp()"
                " - make_interval(secs => ?)",
                (self.lease_duration,),
            ) as cursor:
                row = await cursor.fetchone()
            await self._db.execute(
                "DELETE FROM cluster_members WHERE heartbeat_at < clock_timestamp()"
                " - make_interval(secs => ?)",
                (self.lease_duration * FORGET_AFTER,),
            )
        except DATABASE_ERRORS:
            if self.reachable:
                log.error(
                    "cluster member %s cannot reach the state database; keeping %d lease(s), taking none",
                    self._me,
                    len(self._held),
                )
            self.reachable = False
            raise
        if not self.reachable:
            log.info("cluster member %s reaches the state database again", self._me)
        self.reachable = True
        self._members = max(1, int(row[0]) if row else 1)
        for key, counter in before.items():
            # A lease taken while this heartbeat ran is not in `before`: it is new, not lost.
            if self._held.get(key) == counter and renewed.get(key) != counter:
                self.lost(*key, "another member took it")
        self._valid_until = started + self.lease_duration
        # Rows naming this member that it does not hold (lost locally, e.g. fenced): free them for all.
        for (source, shard), counter in renewed.items():
            if self._held.get((source, shard)) != counter and (source, shard) not in before:
                with contextlib.suppress(*DATABASE_ERRORS):
                    await self._db.execute(
                        "UPDATE leases SET owner = NULL, expires_at = clock_timestamp()"
                        " WHERE source = ? AND shard = ? AND owner = ? AND counter = ?",
                        (source, shard, self._me, counter),
                    )
        self._set_gauges()

    def _set_gauges(self) -> None:
        if self._metrics is None:
            return
        self._metrics.members.set(self._members)
        schedules = sum(1 for _, shard in self._held if shard == SCHEDULE)
        self._metrics.leases_held.labels("shard").set(len(self._held) - schedules)
        self._metrics.leases_held.labels("schedule").set(schedules)

    # --- the Leases interface --------------------------------------------------------------------

    def holds_shard(self, source: str, shard: str) -> bool:
        """True while this member surely holds the lease (or the database is away: nobody can take it)."""
        if (source, shard) not in self._held:
            return False
        return not self.reachable or time.monotonic() < self._valid_until

    def counter(self, source: str, shard: str) -> int | None:
        """The counter a held lease was taken with (the fence of its checkpoints)."""
        return self._held.get((source, shard)) if self.holds_shard(source, shard) else None

    def lost(self, source: str, shard: str, why: str) -> None:
        """Forget a lease this member no longer holds; its reader stops at its next step."""
        if self._held.pop((source, shard), None) is not None:
            log.warning("%s: lease on %s lost (%s)", source, shard, why)
            self._set_gauges()

    async def owns_shard(self, source: str, shard: str) -> bool:
        """Keep a held lease, or take the shard if it is free or balancing says so."""
        if self.holds_shard(source, shard):
            return True
        if not self.reachable:
            return False
        try:
            return await self._take(source, shard, balance=True)
        except DATABASE_ERRORS:
            return False

    async def leads_schedule(self, source: str) -> bool:
        """True while this member holds the schedule's leadership lease (taken when it is free)."""
        if self.holds_shard(source, SCHEDULE):
            return True
        if not self.reachable:
            return False
        try:
            return await self._take(source, SCHEDULE, balance=False)
        except DATABASE_ERRORS:
            return False

    async def claim_tick(self, source: str, fire_time: float) -> bool:
        """Record a tick as fired, in one statement fenced by the leadership lease and the last tick.

        Checking leadership and then writing would let two members fire one tick: the old leader's
        check can pass just before its lease lapses while the new leader reads the same last tick.
        Here the row lock on the schedule's state orders them, and only a later tick under a valid
        lease is written.
        """
        counter = self.counter(source, SCHEDULE)
        if counter is None:
            return False
        async with self._db.execute(
            "WITH lease AS (SELECT 1 FROM leases WHERE source = ? AND shard = ? AND owner = ? AND counter = ?"
            " AND expires_at > clock_timestamp() FOR SHARE), fired AS (INSERT INTO schedule_state"
            " (source, last_fire) SELECT ?, ? FROM lease ON CONFLICT (source) DO UPDATE SET last_fire ="
            " excluded.last_fire WHERE schedule_state.last_fire < excluded.last_fire RETURNING 1)"
            " SELECT (SELECT count(*) FROM lease), (SELECT count(*) FROM fired)",
            (source, SCHEDULE, self._me, counter, source, fire_time),
        ) as cursor:
            row = await cursor.fetchone()
        leads, claimed = (bool(row[0]), bool(row[1])) if row else (False, False)
        if not leads:
            self.lost(source, SCHEDULE, "its lease lapsed before a tick was recorded")
        return claimed

    async def release_shard(self, source: str, shard: str) -> None:
        """Give a lease up at once (the reader stopped, or the shard is finished)."""
        counter = self._held.pop((source, shard), None)
        if counter is None:
            return
        self._set_gauges()
        with contextlib.suppress(*DATABASE_ERRORS):
            await self._db.execute(
                "UPDATE leases SET owner = NULL, expires_at = clock_timestamp()"
                " WHERE source = ? AND shard = ? AND owner = ? AND counter = ?",
                (source, shard, self._me, counter),
            )

    # --- taking leases ---------------------------------------------------------------------------

    async def _take(self, source: str, shard: str, balance: bool) -> bool:
        async with self._db.execute(
            "SELECT shard, owner, counter, expires_at < clock_timestamp() FROM leases WHERE source = ?"
            + ("" if balance else " AND shard = ?"),
            (source,) if balance else (source, shard),
        ) as cursor:
            rows = list(await cursor.fetchall())
        this = next((r for r in rows if r[0] == shard), None)
        # A row naming this member for a lease it does not hold is stale (lost locally): take it anew.
        free = this is None or this[1] is None or bool(this[3]) or this[1] == self._me
        if balance:
            live = [
                r
                for r in rows
                if r[1] is not None and not r[3] and (r[1] != self._me or self._owned(source, r))
            ]
            load: dict[str, int] = {}
            for r in live:
                load[r[1]] = load.get(r[1], 0) + 1
            mine = load.get(self._me, 0)
            share = math.ceil((len(live) + (1 if free else 0)) / self._members)
            if mine >= share:
                return False
            if not free:
                assert this is not None
                owner = this[1]
                busiest = max(load.values(), default=0)
                if (
                    load.get(owner, 0) != busiest
                    or busiest - mine < 2
                    or time.monotonic() - self._stole_at < self.renew_every
                ):
                    return False
                return await self._steal(source, shard, owner, int(this[2]))
        elif not free:
            return False
        counter = await self._claim(source, shard)
        if counter is None:
            return False
        previous = this[1] if this is not None else None
        if previous is not None and previous != self._me:
            log.info("%s: took over the expired lease on %s from %s", source, shard, previous)
            if self._metrics is not None:
                self._metrics.takeovers.inc()
        return True

    def _owned(self, source: str, row: object) -> bool:
        return self._held.get((source, row[0])) == int(row[2])  # type: ignore[index]

    async def _claim(self, source: str, shard: str) -> int | None:
        """Take a free lease (absent, unowned or expired); its new counter, or None if another won."""
        async with self._db.execute(
            "INSERT INTO leases (source, shard, owner, counter, expires_at) VALUES"
            " (?, ?, ?, 1, clock_timestamp() + make_interval(secs => ?)) ON CONFLICT (source, shard)"
            " DO UPDATE SET owner = excluded.owner, counter = leases.counter + 1,"
            " expires_at = excluded.expires_at"
            " WHERE leases.owner IS NULL OR leases.owner = excluded.owner"
            " OR leases.expires_at < clock_timestamp() RETURNING counter",
            (source, shard, self._me, self.lease_duration),
        ) as cursor:
            row = await cursor.fetchone()
        return self._hold(source, shard, row)

    async def _steal(self, source: str, shard: str, owner: str, counter: int) -> bool:
        self._stole_at = time.monotonic()
        async with self._db.execute(
            "UPDATE leases SET owner = ?, counter = counter + 1,"
            " expires_at = clock_timestamp() + make_interval(secs => ?)"
            " WHERE source = ? AND shard = ? AND owner = ? AND counter = ? RETURNING counter",
            (self._me, self.lease_duration, source, shard, owner, counter),
        ) as cursor:
            row = await cursor.fetchone()
        if self._hold(source, shard, row) is None:
            return False
        log.info("%s: took the lease on %s from %s to balance the cluster", source, shard, owner)
        if self._metrics is not None:
            self._metrics.steals.inc()
        return True

    def _hold(self, source: str, shard: str, row: object) -> int | None:
        if row is None:
            return None
        counter = int(row[0])  # type: ignore[index]
        self._held[(source, shard)] = counter
        if not self._valid_until or time.monotonic() >= self._valid_until:
            self._valid_until = time.monotonic() + self.lease_duration
        self._set_gauges()
        return counter

    # --- reading the cluster (cluster status) ----------------------------------------------------


async def members(db: Database) -> list[MemberRow]:
    """Every member heard from recently, the most recent first."""
    async with db.execute(
        "SELECT member_id, extract(epoch FROM clock_timestamp() - heartbeat_at), leaving"
        " FROM cluster_members ORDER BY heartbeat_at DESC"
    ) as cursor:
        return [MemberRow(r[0], float(r[1]), bool(r[2])) for r in await cursor.fetchall()]


async def leases(db: Database) -> list[LeaseRow]:
    """Every lease, by source and shard."""
    async with db.execute(
        "SELECT source, shard, owner, counter, extract(epoch FROM expires_at - clock_timestamp())"
        " FROM leases ORDER BY source, shard"
    ) as cursor:
        return [LeaseRow(r[0], r[1], r[2], int(r[3]), float(r[4])) for r in await cursor.fetchall()]


def held_by(rows: Iterable[LeaseRow]) -> dict[str, int]:
    """Live shard leases per owner."""
    counts: dict[str, int] = {}
    for r in rows:
        if r.owner is not None and r.expires_in > 0 and r.shard != SCHEDULE:
            counts[r.owner] = counts.get(r.owner, 0) + 1
    return counts
