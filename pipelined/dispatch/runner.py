"""One source of one function: poll (or be pushed) -> filter -> deliver (delivery.py) -> settle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from pipelined.core.filtering import EventFilter
from pipelined.core.lambda_errors import LambdaError
from pipelined.core.records import Batch, Outcome, Record
from pipelined.core.retry import backoff
from pipelined.dispatch.delivery import Delivery
from pipelined.dispatch.destinations import Destination
from pipelined.functions.function import Function
from pipelined.invoke.service import Caller
from pipelined.observe.metrics import SourceMetrics
from pipelined.sources.base import PushSource, Source

log = logging.getLogger("pipelined.dispatcher")

POLL_ERROR_BACKOFF_MAX = 30.0


class SourceRunner:
    """Runs one source of one function: pollers (or a push source's sink), deliveries, settling."""

    def __init__(
        self,
        caller: Caller,
        source: Source | PushSource,
        metrics: SourceMetrics,
        destination: Destination | None,
        event_filter: EventFilter | None = None,
    ) -> None:
        self.caller = caller
        self.source = source
        self.metrics = metrics
        self.destination = destination
        self.event_filter = event_filter
        self.started = False
        self._stopping = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._polling: set[asyncio.Task[Any]] = set()
        self._up: bool | None = None
        # Decided once: isinstance() against a runtime-checkable Protocol is slow on the hot path.
        self._pushes = isinstance(source, PushSource)
        self._delivery = Delivery(
            self.key, caller, source, source.retry_policy, metrics, destination, self._stopping
        )

    @property
    def function(self) -> Function:
        """The function this runner invokes."""
        return self.caller.function

    @property
    def key(self) -> str:
        """`function/source`, the name used in logs and state."""
        return f"{self.caller.function.name}/{self.source.name}"

    @property
    def healthy(self) -> bool:
        """Started, not stopping, and the source reports its upstream reachable."""
        return self.started and not self._stopping.is_set() and self.source.healthy

    async def start(self) -> None:
        """Start the source and its pollers (a push source gets this runner as its sink instead)."""
        if isinstance(self.source, PushSource):
            await self.source.start(self)
            self.started = True
            self._report_health()
            return
        await self.source.start()
        self.started = True
        self._report_health()
        for n in range(max(1, self.source.concurrency)):
            self._workers.append(asyncio.create_task(self._poll_loop(self.source), name=f"{self.key}#{n}"))

    def _report_health(self) -> None:
        # Only on change: this runs after every poll, and a gauge set takes a lock.
        up = self.source.healthy
        if up != self._up:
            self._up = up
            self.metrics.source_up.set(1 if up else 0)

    async def stop(self, timeout: float) -> None:
        """Stop polling, let deliveries in flight finish within `timeout`, then close the source."""
        self._stopping.set()
        if isinstance(self.source, PushSource):
            await self.source.stop(timeout)
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

    # --- BatchSink, for push sources ---------------------------------------------------------------------

    def source_failed(self, error: Exception) -> None:
        """Count an upstream failure and show the source down."""
        self.metrics.source_errors.inc()
        self._up = False
        self.metrics.source_up.set(0)
        log.warning("%s: %s", self.key, error)

    def health_changed(self) -> None:
        """Refresh pipelined_source_up."""
        self._report_health()

    # --- polling -----------------------------------------------------------------------------------------

    async def _poll_loop(self, source: Source) -> None:
        failures = 0
        task = asyncio.current_task()
        assert task is not None
        while not self._stopping.is_set():
            self._polling.add(task)
            try:
                batch = await source.poll()
            except asyncio.CancelledError:
                if self._stopping.is_set():
                    return
                raise
            except Exception as exc:
                failures += 1
                self.metrics.source_errors.inc()
                self._up = False
                self.metrics.source_up.set(0)
                delay = backoff(failures, 0.5, POLL_ERROR_BACKOFF_MAX)
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
        if batch.rejection is not None:
            # The source could not make an event of it: straight to the on-failure destination.
            outcome = await self._delivery.give_up(
                [], batch, batch.rejection, batch.rejection.error_type, 0, batch.records[0].arrived_at, 0
            )
            await self._settle(batch, outcome)
            return outcome
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
        try:
            outcome = await self._delivery.process(work) if work.records else Outcome()
        except Exception as exc:
            # A bug or an exhausted resource (file descriptors, memory) outside the handler: the batch
            # goes back upstream as failed, and the poller (or the stream lane) carries on.
            m.source_errors.inc()
            m.count("failed", len(work.records))
            log.exception("%s: delivering a batch failed; its records will be redelivered", self.key)
            error = LambdaError("Pipelined.DeliveryError", f"{type(exc).__name__}: {exc}", None)
            outcome = Outcome(failed=work.records, error=error)
        if filtered:
            outcome = Outcome(
                outcome.succeeded, outcome.failed, outcome.dead_lettered, filtered, outcome.error
            )
        await self._settle(batch, outcome)
        return outcome

    async def _settle(self, batch: Batch, outcome: Outcome) -> None:
        try:
            await self.source.settle(batch, outcome)
        except Exception as exc:
            # The records come back upstream (visibility, no checkpoint, no ack): retried, never lost.
            self.metrics.source_errors.inc()
            log.warning("%s: settling a batch failed (%s); its records will be redelivered", self.key, exc)
        if self._pushes:
            self._report_health()
