"""The protocols between event sources and the dispatcher."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from pipelined.core.records import Batch, Outcome
from pipelined.core.retry import RetryPolicy


@runtime_checkable
class Source(Protocol):
    """A stream of batches for one function; the dispatcher polls it and hands back outcomes."""

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
