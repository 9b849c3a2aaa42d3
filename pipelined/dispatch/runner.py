"""One generic path for every source: poll -> filter -> invoke (retry, bisect) -> settle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelined.core.filtering import EventFilter
from pipelined.core.records import Batch, Outcome, PartialFailureMode, Record
from pipelined.core.retry import GiveUp, decide, is_too_old
from pipelined.dispatch.destinations import Destination, FailedBatch
from pipelined.errors import DestinationError
from pipelined.functions.function import FunctionRuntime, InvocationResult
from pipelined.observe.metrics import SourceMetrics
from pipelined.sources.base import Source

log = logging.getLogger("pipelined.dispatcher")

POLL_ERROR_BACKOFF_MAX = 30.0


@dataclass(frozen=True, slots=True)
class _Split:
    """How one invocation's result divides a batch."""

    succeeded: tuple[Record, ...]
    failed: tuple[Record, ...]
    # True when the handler raised or timed out (bisect only splits on function errors).
    function_error: bool


def invalid_response(reason: str) -> dict[str, Any]:
    """The error object for a batchItemFailures response Lambda would reject."""
    return {"errorMessage": f"invalid batchItemFailures response: {reason}", "errorType": "InvalidResponse"}


def split_result(batch: Batch, result: InvocationResult) -> tuple[_Split, Mapping[str, Any] | None]:
    """Apply Lambda's partial batch response rules to one invocation's result."""
    records = batch.records
    if result.error is not None:
        return _Split((), records, True), result.error
    mode = batch.partial_failure_mode
    if mode is None:
        return _Split(records, (), False), None
    value = result.value
    if value is None:
        return _Split(records, (), False), None
    if not isinstance(value, Mapping):
        return _Split((), records, True), invalid_response(f"expected an object, got {type(value).__name__}")
    items = value.get("batchItemFailures")
    if items is None or items == []:
        return _Split(records, (), False), None
    if not isinstance(items, list):
        return _Split((), records, True), invalid_response("batchItemFailures is not a list")
    positions = {r.id: i for i, r in enumerate(records)}
    failed_positions: set[int] = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(identifier, str) or identifier not in positions:
            return _Split((), records, True), invalid_response(f"unknown itemIdentifier {identifier!r}")
        failed_positions.add(positions[identifier])
    error = {
        "errorMessage": f"{len(failed_positions)} item(s) reported failed",
        "errorType": "PartialFailure",
    }
    if mode is PartialFailureMode.FROM_LOWEST:
        lowest = min(failed_positions)
        return _Split(records[:lowest], records[lowest:], False), error
    succeeded = tuple(r for i, r in enumerate(records) if i not in failed_positions)
    failed = tuple(r for i, r in enumerate(records) if i in failed_positions)
    return _Split(succeeded, failed, False), error


class SourceRunner:
    """Runs one source of one function: pollers, deliveries, retries, dead-lettering, settling."""

    def __init__(
        self,
        function: FunctionRuntime,
        source: Source,
        metrics: SourceMetrics,
        destination: Destination | None,
        event_filter: EventFilter | None = None,
    ) -> None:
        self.function = function
        self.source = source
        self.metrics = metrics
        self.destination = destination
        self.event_filter = event_filter
        self.started = False
        self._stopping = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._polling: set[asyncio.Task[Any]] = set()
        self._up: bool | None = None
        # ConcurrentExecutions is read from the function at scrape time instead of inc/dec per call.
        metrics.concurrent.set_function(lambda: function.in_flight)

    @property
    def key(self) -> str:
        """`function/source`, the name used in logs and state."""
        return f"{self.function.name}/{self.source.name}"

    @property
    def healthy(self) -> bool:
        """Started, not stopping, and the source reports its upstream reachable."""
        return self.started and not self._stopping.is_set() and self.source.healthy

    async def start(self) -> None:
        """Start the source and its pollers."""
        await self.source.start()
        self.started = True
        self._report_health()
        for n in range(max(1, self.source.concurrency)):
            self._workers.append(asyncio.create_task(self._poll_loop(), name=f"{self.key}#{n}"))

    def _report_health(self) -> None:
        # Only on change: this runs after every poll, and a gauge set takes a lock.
        up = self.source.healthy
        if up != self._up:
            self._up = up
            self.metrics.source_up.set(1 if up else 0)

    async def stop(self, timeout: float) -> None:
        """Stop polling, let deliveries in flight finish within `timeout`, then close the source."""
        self._stopping.set()
        for task in list(self._polling):
            task.cancel()
        if self._workers:
            _, pending = await asyncio.wait(self._workers, timeout=max(0.0, timeout))
            for task in pending:
                log.warning("%s: delivery still running after the shutdown budget; abandoning it", self.key)
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()
        self._up = False
        self.metrics.source_up.set(0)
        await self.source.close()

    async def _poll_loop(self) -> None:
        failures = 0
        task = asyncio.current_task()
        assert task is not None
        while not self._stopping.is_set():
            self._polling.add(task)
            try:
                batch = await self.source.poll()
            except asyncio.CancelledError:
                if self._stopping.is_set():
                    return
                raise
            except Exception as exc:
                failures += 1
                self.metrics.source_errors.inc()
                self._up = False
                self.metrics.source_up.set(0)
                delay = min(POLL_ERROR_BACKOFF_MAX, 0.5 * 2 ** min(failures, 10))
                log.warning("%s: polling failed (%s); retrying in %.1fs", self.key, exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                continue
            finally:
                self._polling.discard(task)
            if failures:
                failures = 0
            self._report_health()
            if batch is not None:
                await self.deliver(batch)

    async def deliver(self, batch: Batch) -> Outcome:
        """Filter, invoke (with retries) and settle one batch; returns what happened to each record."""
        m = self.metrics
        m.count("polled", len(batch.records))
        if batch.records:
            m.iterator_age.set(max(0.0, time.time() - batch.records[-1].arrived_at))
        filtered: tuple[Record, ...] = ()
        work = batch
        if self.event_filter is not None:
            keep = tuple(
                r for r in batch.records if r.filter_data is None or self.event_filter.matches(r.filter_data)
            )
            if len(keep) != len(batch.records):
                kept = set(map(id, keep))
                filtered = tuple(r for r in batch.records if id(r) not in kept)
                m.count("filtered", len(filtered))
                work = batch.subset(keep)
        outcome = await self._process(work, 0) if work.records else Outcome()
        if filtered:
            outcome = Outcome(
                outcome.succeeded, outcome.failed, outcome.dead_lettered, filtered, outcome.error
            )
        try:
            await self.source.settle(batch, outcome)
        except Exception as exc:
            # The records come back upstream (visibility, no checkpoint, no ack): retried, never lost.
            self.metrics.source_errors.inc()
            log.warning("%s: settling a batch failed (%s); its records will be redelivered", self.key, exc)
        return outcome

    async def _invoke(self, batch: Batch) -> InvocationResult:
        m = self.metrics
        await self.function.acquire(on_throttle=m.throttles.inc)
        try:
            result = await self.function.invoke(batch.event())
        finally:
            self.function.release()
        m.invocations.inc()
        m.duration.observe(result.duration_ms / 1000)
        m.count("invoked", len(batch.records))
        return result

    async def _process(self, batch: Batch, retries: int) -> Outcome:
        policy = self.source.retry_policy
        m = self.metrics
        succeeded: list[Record] = []
        pending = batch
        first_failed_at: float | None = None
        while True:
            if policy is not None and is_too_old(policy, _oldest(pending), time.time()):
                error: Mapping[str, Any] | None = {
                    "errorMessage": "record age exceeded before invocation",
                    "errorType": "RecordAgeExceeded",
                }
                return await self._give_up(
                    succeeded, pending, error, policy.age_condition, retries, first_failed_at
                )
            result = await self._invoke(pending)
            split, error = split_result(pending, result)
            succeeded.extend(split.succeeded)
            m.count("succeeded", len(split.succeeded))
            if not split.failed:
                return Outcome(tuple(succeeded), (), (), (), None)
            m.errors.inc()
            m.count("failed", len(split.failed))
            first_failed_at = first_failed_at or time.time()
            failed_batch = pending.subset(split.failed)
            if policy is None:
                return Outcome(tuple(succeeded), split.failed, (), (), error)
            if policy.bisect_on_error and split.function_error and len(split.failed) > 1:
                # Splitting does not count as a retry (Lambda's rule); each half keeps the retry count.
                half = len(split.failed) // 2
                first = await self._process(pending.subset(split.failed[:half]), retries)
                # A first half left for redelivery (shutdown, failed destination) holds the second
                # half back too: a stream must not process records past one it has not finished.
                second = (
                    Outcome(failed=split.failed[half:])
                    if first.failed
                    else await self._process(pending.subset(split.failed[half:]), retries)
                )
                return _merge(tuple(succeeded), [first, second])
            decision = decide(policy, retries, _oldest(pending), time.time())
            if isinstance(decision, GiveUp) or self._stopping.is_set():
                if not isinstance(decision, GiveUp):
                    # Shutting down mid-retry: leave the records to the source to redeliver.
                    return Outcome(tuple(succeeded), split.failed, (), (), error)
                return await self._give_up(
                    succeeded, failed_batch, error, decision.condition, retries, first_failed_at
                )
            m.count("retried", len(split.failed))
            log.info(
                "%s: %d record(s) failed; retry %d in %.2fs",
                self.key,
                len(split.failed),
                retries + 1,
                decision.delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), decision.delay)
            retries += 1
            pending = failed_batch

    async def _give_up(
        self,
        succeeded: list[Record],
        batch: Batch,
        error: Mapping[str, Any] | None,
        condition: str,
        retries: int,
        first_failed_at: float | None,
    ) -> Outcome:
        """Send a batch that is out of retries or too old to the on-failure destination."""
        records = batch.records
        if self.destination is None:
            log.warning("%s: %d record(s) dropped (%s, no on_failure)", self.key, len(records), condition)
            self.metrics.count("dropped", len(records))
            return Outcome(tuple(succeeded), (), records, (), error)
        failed = FailedBatch(
            function=self.function.name,
            function_arn=self.function.arn,
            source=self.source.name,
            batch=batch,
            error=error,
            condition=condition,
            invoke_count=retries + 1,
            first_failed_at=first_failed_at or time.time(),
            context=self.source.failure_context(batch),
        )
        try:
            await self.destination.send(failed)
        except DestinationError as exc:
            # Never drop what could not be parked: the source redelivers it as a plain failure.
            self.metrics.dead_letter_errors.inc()
            log.error("%s: %s; %d record(s) left for redelivery", self.key, exc, len(records))
            return Outcome(tuple(succeeded), records, (), (), error)
        log.warning(
            "%s: %d record(s) sent to the on-failure destination (%s)", self.key, len(records), condition
        )
        self.metrics.count("dead_lettered", len(records))
        return Outcome(tuple(succeeded), (), records, (), error)


def _oldest(batch: Batch) -> float:
    return min(r.arrived_at for r in batch.records)


def _merge(succeeded: tuple[Record, ...], outcomes: list[Outcome]) -> Outcome:
    return Outcome(
        succeeded + tuple(r for o in outcomes for r in o.succeeded),
        tuple(r for o in outcomes for r in o.failed),
        tuple(r for o in outcomes for r in o.dead_lettered),
        (),
        next((o.error for o in reversed(outcomes) if o.error is not None), None),
    )
