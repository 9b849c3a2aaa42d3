"""Schedules (rate, cron, at) as an event source: EventBridge's event shape, catch-up after downtime."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pipelined.config import ScheduleSource as ScheduleConfig
from pipelined.core.identity import DEFAULT_ACCOUNT_ID, rule_arn
from pipelined.core.records import Batch, Outcome, Record
from pipelined.core.retry import RetryPolicy
from pipelined.core.schedules import (
    RateExpression,
    ScheduleExpression,
    parse_schedule,
    validate_timezone,
)
from pipelined.core.timestamps import iso_seconds
from pipelined.state import StateStore
from pipelined.state.interfaces import LOCAL_LEASES, Leases

log = logging.getLogger("pipelined.sources.schedule")

# With catch_up: all, at most this many missed firings are replayed (oldest first).
MAX_CATCH_UP = 1000
# Firings may overlap when a handler outlasts the interval, as with EventBridge's async invokes.
SCHEDULE_CONCURRENCY = 10


def scheduled_event(account: str, region: str, rule: str, fire_time: float) -> dict[str, Any]:
    """EventBridge's Scheduled Event for one firing of the rule `rule` (an ARN)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": iso_seconds(fire_time),
        "region": region,
        "resources": [rule],
        "detail": {},
    }


class ScheduleEventSource:
    """Fires a function on a schedule; the last settled fire time is kept in the state store."""

    concurrency = SCHEDULE_CONCURRENCY
    healthy = True

    def __init__(
        self,
        function: str,
        config: ScheduleConfig,
        state: StateStore,
        region: str,
        account: str = DEFAULT_ACCOUNT_ID,
        clock: Callable[[], float] = time.time,
        leases: Leases = LOCAL_LEASES,
    ) -> None:
        assert config.name is not None
        self.name = config.name
        self.function = function
        self.config = config
        self.state = state
        self.leases = leases
        self.region = region
        self.account = account
        self.rule_arn = rule_arn(region, account, f"{function}-{config.name}")
        self.state_key = f"{function}/{config.name}"
        self.expression: ScheduleExpression = parse_schedule(config.expression)
        self.timezone = validate_timezone(config.timezone)
        self.retry_policy = RetryPolicy(
            maximum_retry_attempts=config.maximum_retry_attempts,
            maximum_record_age=config.maximum_event_age,
            attempts_condition="RetriesExhausted",
            age_condition="EventAgeExceeded",
        )
        self._clock = clock
        self._due: deque[float] = deque()
        self._next: float | None = None
        self._lock = asyncio.Lock()
        # Several daemons share the schedule: this one fired the last tick as its leader.
        self._leading = False

    def _next_after(self, ts: float) -> float | None:
        nxt = self.expression.next_after(datetime.fromtimestamp(ts, UTC), self.timezone)
        return nxt.timestamp() if nxt is not None else None

    def _missed(self, since: float, now: float) -> list[float]:
        """Fire times in (since, now], at most MAX_CATCH_UP of the newest within the event age limit."""
        window_start = max(since, now - self.config.maximum_event_age)
        missed: deque[float] = deque(maxlen=MAX_CATCH_UP)
        t = self._next_after(window_start)
        while t is not None and t <= now:
            missed.append(t)
            t = self._next_after(t)
        return list(missed)

    def _plan(self, last_fire: float | None, now: float) -> None:
        """Queue the firings missed since `last_fire` as catch_up says, and find the next one."""
        if last_fire is not None and self.config.catch_up != "none":
            missed = self._missed(last_fire, now)
            if missed:
                chosen = missed if self.config.catch_up == "all" else missed[-1:]
                log.info(
                    "%s: %d firing(s) missed while stopped; catching up %d (catch_up: %s)",
                    self.state_key,
                    len(missed),
                    len(chosen),
                    self.config.catch_up,
                )
                self._due.extend(chosen)
        self._next = self._first_after(last_fire if last_fire is not None else now, now)

    def _first_after(self, anchor: float, now: float) -> float | None:
        """The first firing after `now`; a rate() keeps the cadence of `anchor`, its last firing."""
        if isinstance(self.expression, RateExpression) and anchor < now:
            step = self.expression.interval.total_seconds()
            anchor += (now - anchor) // step * step
        nxt = self._next_after(anchor)
        while nxt is not None and nxt <= now:
            nxt = self._next_after(nxt)
        return nxt

    async def start(self) -> None:
        last_fire = await self.state.schedules.last_fire(self.state_key)
        self._plan(last_fire, self._clock())
        if self._next is not None:
            log.info("%s: next firing at %s", self.state_key, iso_seconds(self._next))

    async def poll(self) -> Batch | None:
        async with self._lock:
            if self._due:
                return await self._fire(self._due.popleft())
            if self._next is None:
                # A past at() schedule: nothing more will ever fire.
                await asyncio.sleep(3600)
                return None
            delay = self._next - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
                if self._next - self._clock() > 0.001:
                    return None  # woke early (clock adjusted); the next poll waits again
            fire = self._next
            now = self._clock()
            nxt = self._next_after(fire)
            if nxt is not None and nxt <= now:
                # Far behind (the machine slept): treat it like downtime, as catch_up says.
                self._plan(fire, now)
            else:
                self._next = nxt
            return await self._fire(fire)

    async def _fire(self, fire_time: float) -> Batch | None:
        """The firing's batch, or None when another daemon leads the schedule and fires it."""
        if not self.leases.shared:
            return self._batch(fire_time)
        try:
            return await self._fire_shared(fire_time)
        except BaseException:
            # The database is away (or we are stopping): whoever leads next, this member included,
            # starts again from the cluster's last recorded tick and catches up what this one missed.
            self._leading = False
            raise

    async def _fire_shared(self, fire_time: float) -> Batch | None:
        if not await self.leases.leads_schedule(self.state_key):
            log.debug("%s: firing %s left to the schedule's leader", self.state_key, iso_seconds(fire_time))
            self._leading = False
            return None
        if not self._leading:
            # The last fired time is the cluster's: a new leader first fires what its predecessor missed.
            self._leading = True
            log.info("%s: this member now leads the schedule", self.state_key)
            last = await self.state.schedules.last_fire(self.state_key)
            if last is not None:
                self._due.clear()  # planned from older knowledge; the plan from `last` covers it
                self._plan(last, self._clock())
                if self._due:
                    fire_time = self._due.popleft()
        # In a cluster the tick is recorded before it runs, in one statement fenced by the leadership
        # lease: a leader killed mid-invocation must not leave it to the next leader, and two members
        # that both believe they lead (one's lease lapsing) must not both fire it. Only a kill between
        # this write and the invocation's start loses a tick, so each tick runs at most once.
        if not await self.leases.claim_tick(self.state_key, fire_time):
            # Fired already, or leadership lapsed: plan again from the cluster's last tick when leading.
            self._leading = False
            return None
        return self._batch(fire_time)

    def _batch(self, fire_time: float) -> Batch:
        event: Any
        if self.config.input is not None:
            event = self.config.input
        else:
            event = scheduled_event(self.account, self.region, self.rule_arn, fire_time)
        record = Record(id=f"{self.state_key}@{iso_seconds(fire_time)}", payload=event, arrived_at=fire_time)
        return Batch((record,), wrap_records=False)

    async def settle(self, batch: Batch, outcome: Outcome) -> None:
        done = outcome.succeeded + outcome.dead_lettered + outcome.filtered
        if done:
            await self.state.schedules.record_fire(self.state_key, max(r.arrived_at for r in done))
        for record in outcome.failed:
            # Only reached when shutting down mid-retry or the dead-letter store failed.
            log.error("%s: firing %s left unfinished", self.state_key, record.id)

    def failure_context(self, batch: Batch) -> Mapping[str, Any]:
        return {"requestPayload": batch.event()}

    async def close(self) -> None:
        return None
