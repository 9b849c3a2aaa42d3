"""The protocols between event sources and the dispatcher (pulled sources, pushing sources, their sink),
and the context every source is built with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pipelined.aws import AwsClients
from pipelined.config import MqttConfig
from pipelined.core.identity import FunctionIdentity
from pipelined.core.records import Batch, Outcome
from pipelined.core.retry import RetryPolicy
from pipelined.observe.metrics import SourceMetrics
from pipelined.state import StateStore
from pipelined.state.interfaces import LOCAL_LEASES, Checkpointer, Leases, LocalCheckpointer


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


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What a source is given: its function's identity and limits, the stores, leases and connections."""

    function: FunctionIdentity
    # The function's reserved_concurrency: no source may run more batches at once than this.
    reserved_concurrency: int | None
    state: StateStore
    aws: AwsClients
    mqtt: MqttConfig
    # This source's own metric children, for counts only the source can make (SQS "deleted", ...).
    metrics: SourceMetrics
    # Who reads which shard and fires which schedule: this daemon alone, until several share the work.
    leases: Leases = LOCAL_LEASES

    @property
    def checkpointer(self) -> Checkpointer:
        """Where stream sources keep their shards' positions: the daemon's file, or the cluster's database."""
        if self.state.fenced is not None:
            return self.state.fenced
        return LocalCheckpointer(self.state.checkpoints, self.state.markers)
