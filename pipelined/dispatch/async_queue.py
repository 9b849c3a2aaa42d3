"""The asynchronous invocation queue: Lambda's `Event` invocations, on disk from the 202 until settled.

Each event runs at least once: it stays in the state store until it succeeded (and its on-success record
was sent) or failed for good (and its on-failure record was delivered). A failed invocation is retried
after `async.retry_delays`, up to `maximum_retry_attempts` times, while younger than `maximum_event_age`.
An invocation cut short by a crash or a stop is not counted: it runs again after the restart.
An invocation queued by an EventBridge rule follows the rule's retry policy instead of the function's
`async` settings, and what still fails goes to the rule's dead letter.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import json
import logging
import time
from collections import defaultdict, deque
from typing import Any

from pipelined.config import AsyncDestination, DestinationConfig
from pipelined.core.async_records import EVENT_AGE_EXCEEDED, RETRIES_EXHAUSTED, SUCCESS, invocation_record
from pipelined.core.eventbridge_events import RulePolicy, dead_letter_attributes
from pipelined.core.identity import new_request_id
from pipelined.core.lambda_errors import LambdaError
from pipelined.core.retry import backoff
from pipelined.dispatch.async_destinations import SQLITE, RecordSender, Settled
from pipelined.errors import DestinationError, PipelinedError
from pipelined.functions.function import Function
from pipelined.invoke.service import Caller, InvocationKind, InvokeService
from pipelined.observe.metrics import Metrics
from pipelined.state import NewEvent, QueuedEvent, StateStore

log = logging.getLogger("pipelined.async")

# Async invocations of one function in flight at once when it has no reserved concurrency.
ASYNC_CONCURRENCY = 32
# How long an event waits when its function is not configured (removed by a reload) or its record
# could not be parked anywhere.
POSTPONE = 60.0
SOURCE = "async"
# EventBridge's names for the two ways a rule's retries run out (its dead-letter message attributes).
_RULE_CONDITIONS = {RETRIES_EXHAUSTED: "MaximumRetryAttempts", EVENT_AGE_EXCEEDED: "MaximumEventAgeInSeconds"}


class QueueFullError(PipelinedError):
    """The queue holds `api.max_queued_events` events already."""


class AsyncQueue:
    """Runs queued events through the invoke service as Lambda runs asynchronous invocations."""

    def __init__(
        self, state: StateStore, service: InvokeService, sender: RecordSender | None, metrics: Metrics
    ) -> None:
        self._state = state
        self._service = service
        self.sender = sender
        self._metrics = metrics
        self.max_events = 100_000
        self._events: dict[int, QueuedEvent] = {}
        self._due: list[tuple[float, int]] = []
        self._waiting: defaultdict[str, deque[QueuedEvent]] = defaultdict(deque)
        self._running: defaultdict[str, int] = defaultdict(int)
        self._tasks: set[asyncio.Task[None]] = set()
        self._callers: dict[str, Caller] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._scheduler: asyncio.Task[None] | None = None

    @property
    def depth(self) -> int:
        """Events accepted and not yet settled."""
        return len(self._events)

    async def start(self) -> None:
        """Load the events a previous run left (all of them run again) and start running them."""
        for event in await self._state.async_events.pending():
            self._add(event)
        if self._events:
            log.info("async queue: %d event(s) left from the previous run", len(self._events))
        self._scheduler = asyncio.create_task(self._schedule(), name="async-queue")

    async def submit(
        self,
        function: str,
        payload: str,
        request_id: str | None = None,
        client_context: str | None = None,
        trace: str | None = None,
    ) -> str:
        """Persist one event (before the caller answers 202) and queue it; QueueFullError when full."""
        if len(self._events) >= self.max_events:
            raise QueueFullError(f"the asynchronous invocation queue is full ({self.max_events} events)")
        request_id = request_id or new_request_id()
        event = await self._state.async_events.add(request_id, function, payload, client_context, trace)
        self._metrics.async_events_received.labels(function).inc()
        self._add(event)
        return request_id

    async def submit_many(self, events: list[NewEvent]) -> None:
        """Persist several events in one transaction (before PutEvents answers) and queue them."""
        if len(self._events) + len(events) > self.max_events:
            raise QueueFullError(f"the asynchronous invocation queue is full ({self.max_events} events)")
        for event in await self._state.async_events.add_many(events):
            self._metrics.async_events_received.labels(event.function).inc()
            self._add(event)

    async def enqueue(self, function: str, payload: str) -> None:
        """Invoke `function` asynchronously (a `function:NAME` destination), ignoring the queue bound."""
        event = await self._state.async_events.add(new_request_id(), function, payload)
        self._metrics.async_events_received.labels(function).inc()
        self._add(event)

    async def stop(self, timeout: float) -> None:
        """Start no more events; give running ones `timeout` seconds, then cancel them (they run again)."""
        self._stopping = True
        self._wake.set()
        if self._scheduler is not None:
            self._scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # --- scheduling ------------------------------------------------------------------------------------

    def _add(self, event: QueuedEvent) -> None:
        self._events[event.id] = event
        self._metrics.async_queue_depth.labels(event.function).inc()
        heapq.heappush(self._due, (event.next_attempt_at, event.id))
        self._wake.set()

    def _settled(self, event: QueuedEvent) -> None:
        if self._events.pop(event.id, None) is not None:
            self._metrics.async_queue_depth.labels(event.function).dec()

    def _reschedule(self, event: QueuedEvent) -> None:
        self._events[event.id] = event
        heapq.heappush(self._due, (event.next_attempt_at, event.id))
        self._wake.set()

    async def _schedule(self) -> None:
        while not self._stopping:
            now = time.time()
            while self._due and self._due[0][0] <= now:
                _, event_id = heapq.heappop(self._due)
                event = self._events.get(event_id)
                if event is not None:
                    self._ready(event)
            delay = self._due[0][0] - now if self._due else None
            orphans = self._state.async_events.orphan_interval
            if orphans is not None:
                # A shared queue: events of members that died come back after their claim lapsed.
                delay = orphans if delay is None else min(delay, orphans)
                with contextlib.suppress(Exception):
                    for event in await self._state.async_events.orphans_due():
                        if event.id not in self._events:
                            self._add(event)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _limit(self, name: str) -> int:
        function = self._service.functions.get(name)
        reserved = function.config.reserved_concurrency if function is not None else None
        return max(1, reserved) if reserved is not None else ASYNC_CONCURRENCY

    def _ready(self, event: QueuedEvent) -> None:
        name = event.function
        if self._running[name] >= self._limit(name):
            self._waiting[name].append(event)
            return
        self._running[name] += 1
        task = asyncio.create_task(self._run(event), name=f"async:{name}:{event.request_id}")
        self._tasks.add(task)
        task.add_done_callback(lambda t, e=event: self._finished(t, e))  # type: ignore[misc]

    def _finished(self, task: asyncio.Task[None], event: QueuedEvent) -> None:
        self._tasks.discard(task)
        name = event.function
        self._running[name] -= 1
        if not task.cancelled() and task.exception() is not None:
            log.error("async %s: event %s: %s", name, event.request_id, task.exception())
        waiting = self._waiting[name]
        if waiting and not self._stopping:
            self._ready(waiting.popleft())

    def _caller(self, function: Function) -> Caller:
        caller = self._callers.get(function.name)
        if caller is None or caller.function is not function:  # new or reloaded
            caller = self._service.caller(function, SOURCE, InvocationKind.EVENT)
            self._callers[function.name] = caller
        return caller

    # --- one attempt -----------------------------------------------------------------------------------

    async def _run(self, event: QueuedEvent) -> None:
        body = await self._state.async_events.body(event.id)
        if body is None:
            self._settled(event)
            return
        function = self._service.functions.get(event.function)
        if function is None:
            log.warning(
                "async: function %s is not configured; event %s waits", event.function, event.request_id
            )
            await self._postpone(event)
            return
        settings = function.config.async_
        rule = RulePolicy.from_json(event.policy) if event.policy is not None else None
        max_age = rule.maximum_event_age if rule is not None else settings.maximum_event_age
        max_retries = rule.maximum_retry_attempts if rule is not None else settings.maximum_retry_attempts
        age = time.time() - event.received_at
        if age > max_age:
            error = LambdaError.from_payload(event.last_error) if event.last_error else None
            await self._give_up(function, event, body.payload, EVENT_AGE_EXCEEDED, event.attempts, error)
            return
        self._metrics.async_event_age.labels(function.name).observe(age)
        payload = json.loads(body.payload) if body.payload else {}
        client_context = json.loads(body.client_context) if body.client_context else None
        result = await self._caller(function).invoke(
            payload, event.request_id, client_context, trace_id=body.trace or ""
        )
        attempts = event.attempts + 1
        if result.error is None:
            target = settings.destinations.on_success
            if target is not None:
                record = invocation_record(
                    event.request_id, function.arn, SUCCESS, attempts, payload, response=result.value
                )
                settled = Settled(function.name, record, SUCCESS, attempts, event.received_at)
                with contextlib.suppress(DestinationError):
                    await self._send(function.name, target, settled)
            await self._state.async_events.delete(event.id)
            self._settled(event)
            return
        if attempts > max_retries:
            await self._give_up(function, event, payload, RETRIES_EXHAUSTED, attempts, result.error)
            return
        delay = (
            backoff(attempts - 1, rule.backoff_base, rule.backoff_max, "equal")
            if rule is not None
            else settings.retry_delay(attempts)
        )
        # A retry due after the age limit is not made: the event ages out at the limit instead.
        due = min(time.time() + delay, event.received_at + max_age)
        failure = result.error.payload()
        await self._state.async_events.failed_attempt(event.id, due, failure)
        log.info(
            "async %s: %s failed; retry %d at +%.1fs",
            function.name,
            event.request_id,
            attempts,
            due - time.time(),
        )
        self._reschedule(
            dataclasses.replace(event, attempts=attempts, next_attempt_at=due, last_error=failure)
        )

    async def _give_up(
        self,
        function: Function,
        event: QueuedEvent,
        payload: Any,
        condition: str,
        invoke_count: int,
        error: LambdaError | None,
    ) -> None:
        if isinstance(payload, str):
            payload = json.loads(payload) if payload else {}
        self._metrics.async_events_dropped.labels(function.name, condition).inc()
        record = invocation_record(
            event.request_id, function.arn, condition, invoke_count, payload, error=error
        )
        settled = Settled(function.name, record, condition, invoke_count, event.received_at)
        target = _on_failure(function)
        if event.policy is not None:
            target, settled = _rule_dead_letter(RulePolicy.from_json(event.policy), function, settled, error)
        try:
            await self._send(function.name, target, settled)
        except DestinationError:
            if target.kind == "sqlite":
                await self._postpone(event)  # nowhere to put it: keep it, try again later
                return
            try:
                # Never drop a failed event silently: park it locally when its destination is unreachable.
                await self._send(function.name, SQLITE, settled)
            except DestinationError:
                await self._postpone(event)
                return
        log.warning(
            "async %s: %s gave up (%s) after %d invocation(s)",
            function.name,
            event.request_id,
            condition,
            invoke_count,
        )
        await self._state.async_events.delete(event.id)
        self._settled(event)

    async def _send(self, function: str, target: AsyncDestination, settled: Settled) -> None:
        assert self.sender is not None
        try:
            await self.sender.send(target, settled)
        except DestinationError as exc:
            self._metrics.destination_delivery_failures.labels(function, target.kind).inc()
            log.error("async %s: %s", function, exc)
            raise

    async def _postpone(self, event: QueuedEvent) -> None:
        due = time.time() + POSTPONE
        await self._state.async_events.postpone(event.id, due)
        self._reschedule(dataclasses.replace(event, next_attempt_at=due))


def _rule_dead_letter(
    rule: RulePolicy, function: Function, settled: Settled, error: LambdaError | None
) -> tuple[AsyncDestination, Settled]:
    """Where a rule's failed invocation goes, and what: the event with the rule and error as attributes."""
    record = {**settled.record, "rule": {"name": rule.rule_name, "arn": rule.rule_arn}}
    attributes = dead_letter_attributes(
        rule.rule_arn,
        function.arn,
        _RULE_CONDITIONS.get(settled.condition, settled.condition),
        settled.invoke_count,
        error.payload() if error is not None else None,
    )
    target = AsyncDestination(destination=rule.dead_letter)
    return target, dataclasses.replace(
        settled,
        record=record,
        source=f"eventbridge:{rule.rule_name}",
        body=record["requestPayload"],
        attributes=attributes,
    )


def _on_failure(function: Function) -> AsyncDestination:
    """`async.destinations.on_failure`, else the function's `on_failure`, else sqlite."""
    declared = function.config.async_.destinations.on_failure
    if declared is not None:
        return declared
    fallback: DestinationConfig | None = function.config.on_failure
    return AsyncDestination(destination=fallback.destination) if fallback is not None else SQLITE
