"""Delivering one batch to its function: invoke, retry with backoff, bisect, give up to the destination."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time

from pipelined.core.lambda_errors import LambdaError
from pipelined.core.records import Batch, Outcome, Record
from pipelined.core.retry import GiveUp, RetryPolicy, decide, is_too_old
from pipelined.dispatch.destinations import Destination, FailedBatch
from pipelined.dispatch.responses import ResponseSplit, split_result
from pipelined.errors import DestinationError
from pipelined.invoke.service import Caller, InvokeResult
from pipelined.observe.metrics import SourceMetrics
from pipelined.sources.base import FailureContext

log = logging.getLogger("pipelined.dispatcher")

# Records of recently delivered batches remembered to explain a response that names one of them.
RECENT_RECORDS = 1000


class Delivery:
    """Lambda's failure handling for one source: what the retry policy, bisecting and give-up decide."""

    def __init__(
        self,
        key: str,
        caller: Caller,
        source: FailureContext,
        retry_policy: RetryPolicy | None,
        metrics: SourceMetrics,
        destination: Destination | None,
        stopping: asyncio.Event,
    ) -> None:
        self.key = key
        self.caller = caller
        self.source = source
        self.policy = retry_policy
        self.metrics = metrics
        self.destination = destination
        self.stopping = stopping
        # Batches being delivered now and the last few done, so a response naming another one's record
        # can be explained.
        self._in_flight: dict[int, Batch] = {}
        self._recent: collections.deque[Batch] = collections.deque()
        self._recent_records = 0

    async def invoke(self, batch: Batch) -> InvokeResult:
        """One invocation of the function with the batch's event."""
        result = await self.caller.invoke(batch.event())
        self.metrics.count("invoked", len(batch.records))
        return result

    async def process(self, batch: Batch, retries: int = 0) -> Outcome:
        """Invoke until every record succeeded, was dead-lettered, or must be left to the source."""
        if batch.partial_failure_mode is None:
            # Without batchItemFailures no response can name another batch's record: skip the bookkeeping.
            return await self._process(batch, retries)
        self._in_flight[id(batch)] = batch  # by identity: a batch's payloads are not hashable
        try:
            return await self._process(batch, retries)
        finally:
            del self._in_flight[id(batch)]
            self._remember(batch)

    def _remember(self, batch: Batch) -> None:
        self._recent.append(batch)
        self._recent_records += len(batch.records)
        while self._recent and self._recent_records > RECENT_RECORDS:
            self._recent_records -= len(self._recent.popleft().records)

    async def _process(self, batch: Batch, retries: int) -> Outcome:
        policy = self.policy
        m = self.metrics
        succeeded: list[Record] = []
        pending = batch
        first_failed_at: float | None = None
        while True:
            if policy is not None and is_too_old(policy, _oldest(pending), time.time()):
                error = LambdaError("RecordAgeExceeded", "record age exceeded before invocation", None)
                return await self.give_up(
                    succeeded, pending, error, policy.age_condition, retries, first_failed_at
                )
            result = await self.invoke(pending)
            split = split_result(pending, result)
            succeeded.extend(split.succeeded)
            m.count("succeeded", len(split.succeeded))
            if not split.failed:
                return Outcome(tuple(succeeded), (), (), (), None)
            if result.error is None:
                # The invoke service counted function errors; a rejected or partial response counts here.
                m.errors.inc()
                if split.function_error:
                    self._rejected(pending, split)
            m.count("failed", len(split.failed))
            first_failed_at = first_failed_at or time.time()
            failed_batch = pending.subset(split.failed)
            if policy is None:
                return Outcome(tuple(succeeded), split.failed, (), (), split.error)
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
            if isinstance(decision, GiveUp):
                return await self.give_up(
                    succeeded,
                    failed_batch,
                    split.error,
                    decision.condition,
                    retries,
                    first_failed_at,
                    request_id=result.request_id,
                )
            if self.stopping.is_set():
                # Shutting down mid-retry: leave the records to the source to redeliver.
                return Outcome(tuple(succeeded), split.failed, (), (), split.error)
            m.count("retried", len(split.failed))
            log.info(
                "%s: %d record(s) failed; retry %d in %.2fs",
                self.key,
                len(split.failed),
                retries + 1,
                decision.delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), decision.delay)
            retries += 1
            pending = failed_batch

    def _rejected(self, batch: Batch, split: ResponseSplit) -> None:
        """Say why a batch the handler mostly reported done fails as a whole (Lambda's rule)."""
        hint = ""
        unknown = split.unknown_id
        first = batch.records[0]
        if unknown is not None and any(
            first not in other.records and any(r.id == unknown for r in other.records)
            for other in (*self._in_flight.values(), *self._recent)
        ):
            hint = (
                "; it is a record of another recent batch: the handler shares state between invocations "
                "(isolation: inline runs concurrent ones on threads of one process; use isolation: process, "
                "or keep per-invocation state such as a powertools BatchProcessor inside the handler)"
            )
        assert split.error is not None
        log.warning(
            "%s: %s: all %d record(s) of the batch failed%s",
            self.key,
            split.error.error_message,
            len(batch.records),
            hint,
        )

    async def give_up(
        self,
        succeeded: list[Record],
        batch: Batch,
        error: LambdaError | None,
        condition: str,
        retries: int,
        first_failed_at: float | None,
        invoke_count: int | None = None,
        request_id: str | None = None,
    ) -> Outcome:
        """Send a batch that is out of retries, too old or rejected to the on-failure destination."""
        records = batch.records
        if self.destination is None:
            log.warning("%s: %d record(s) dropped (%s, no on_failure)", self.key, len(records), condition)
            self.metrics.count("dropped", len(records))
            return Outcome(tuple(succeeded), (), records, (), error)
        function = self.caller.function
        failed = FailedBatch(
            function=function.name,
            function_arn=function.arn,
            source=self.source.name,
            batch=batch,
            error=error,
            condition=condition,
            invoke_count=retries + 1 if invoke_count is None else invoke_count,
            first_failed_at=first_failed_at or time.time(),
            context=self.source.failure_context(batch),
            request_id=request_id,
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
