"""The protocols between event sources and the dispatcher: pulled sources, pushing sources, their sink."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from pipelined.core.records import Batch, Outcome
from pipelined.core.retry import RetryPolicy


class FailureContext(Protocol):
    """What the dispatcher asks of any source when a batch fails for good."""

    @property
    def name(self) -> str:
        """The event source's name within its function (used in metrics and state)."""

    def failure_context(self, batch: Batch) -> Mapping[str, Any]:
        """Source-specific keys of the on-failure record (requestPayload, KinesisBatchInfo, ...)."""


@runtime_checkable
class Source(Protocol):
    """A source the dispatcher polls: `concurrency` pollers each wait in `poll()` for the next batch."""

    @property
    def name(self) -> str:
        """The event source's name within its function (used in metrics and state)."""

    @property
    def concurrency(self) -> int:
        """How many batches may be in flight at once (several pollers)."""

    @property
    def retry_policy(self) -> RetryPolicy | None:
        """None: failed records are retried upstream (SQS redelivery); else the dispatcher retries them."""

    async def start(self) -> None:
        """Connect and prepare; raise SourceError if the source cannot start."""

    async def poll(self) -> Batch | None:
        """Wait for the next batch; None when there is nothing right now (the dispatcher polls again)."""

    async def settle(self, batch: Batch, outcome: Outcome) -> None:
        """Acknowledge, delete, checkpoint or return the records of a finished batch."""

    def failure_context(self, batch: Batch) -> Mapping[str, Any]:
        """Source-specific keys of the on-failure record (requestPayload, KinesisBatchInfo, ...)."""

    async def close(self) -> None:
        """Stop polling and release connections; idempotent."""

    @property
    def healthy(self) -> bool:
        """False while the upstream is unreachable (reported by /readyz)."""


class BatchSink(Protocol):
    """Where a pushing source hands its batches: the runner, which delivers and settles them."""

    async def deliver(self, batch: Batch) -> Outcome:
        """Filter, invoke (with retries) and settle one batch."""

    def source_failed(self, error: Exception) -> None:
        """The upstream failed (counted, logged, shown down until the source is healthy again)."""

    def health_changed(self) -> None:
        """The source's `healthy` may have changed (a reconnect): refresh what is exported."""


@runtime_checkable
class PushSource(Protocol):
    """A source that produces batches itself (shard readers, a broker session) and pushes them to a sink."""

    @property
    def name(self) -> str:
        """The event source's name within its function (used in metrics and state)."""

    @property
    def retry_policy(self) -> RetryPolicy | None:
        """None: failed records are retried upstream; else the dispatcher retries them."""

    async def start(self, sink: BatchSink) -> None:
        """Connect and begin pushing batches to `sink`; raise SourceError if the source cannot start."""

    async def settle(self, batch: Batch, outcome: Outcome) -> None:
        """Acknowledge, checkpoint or return the records of a finished batch."""

    def failure_context(self, batch: Batch) -> Mapping[str, Any]:
        """Source-specific keys of the on-failure record."""

    async def stop(self, timeout: float) -> None:
        """Push nothing more; wait up to `timeout` for batches in delivery, then abandon them."""

    async def close(self) -> None:
        """Release connections and write what must be written; idempotent."""

    @property
    def healthy(self) -> bool:
        """False while the upstream is unreachable (reported by /readyz)."""
