"""Records, batches and outcomes: what every event source hands the dispatcher and gets back."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelined.core.lambda_errors import LambdaError


class PartialFailureMode(enum.Enum):
    """How a `batchItemFailures` response maps to the records that must be retried."""

    # SQS: exactly the reported messages fail; the rest are done.
    ITEMS = "items"
    # Streams: everything from the lowest reported sequence number onwards is retried, so order is kept.
    FROM_LOWEST = "from_lowest"


@dataclass(frozen=True, slots=True)
class Record:
    """One unit of work as the source delivers it and settles it."""

    # The identifier a handler reports in `batchItemFailures` (messageId, SequenceNumber, ...).
    id: str
    # What goes into the handler's event: an element of "Records", or the whole event for schedules.
    payload: Mapping[str, Any]
    # Epoch seconds when the record entered the upstream system (age limits, iterator age).
    arrived_at: float
    # What filter patterns are evaluated on, e.g. {"body": {...}}; None means the record is never filtered.
    filter_data: Mapping[str, Any] | None = None
    # Source-private data needed to settle the record (receipt handle, shard id, MQTT message id, ...).
    settle_token: Any = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Batch:
    """Records delivered to one invocation, plus how its event is shaped."""

    records: tuple[Record, ...]
    # True: the event is {"Records": [payloads]}; False: the single record's payload is the event itself.
    wrap_records: bool = True
    # None: the handler's return value is ignored (ReportBatchItemFailures is off).
    partial_failure_mode: PartialFailureMode | None = None
    # Source-private data for settling the batch as a whole (shard id, lease, ...).
    settle_token: Any = field(default=None, compare=False)
    # Set by a source that cannot turn what it received into an event (a malformed notification): the
    # dispatcher sends the batch to the on-failure destination without invoking the function.
    rejection: LambdaError | None = None

    def event(self) -> Any:
        """Build the event the handler receives."""
        if self.wrap_records:
            return {"Records": [dict(r.payload) for r in self.records]}
        return self.records[0].payload

    def subset(self, records: tuple[Record, ...]) -> Batch:
        """The same batch restricted to `records` (for retries and bisection)."""
        return Batch(records, self.wrap_records, self.partial_failure_mode, self.settle_token, self.rejection)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to every record of a batch, handed back to its source to settle."""

    succeeded: tuple[Record, ...] = ()
    # Failed and not dead-lettered: the source makes them come back (SQS visibility, stream rewind, ...).
    failed: tuple[Record, ...] = ()
    # Failed for good and delivered to the on-failure destination (or dropped when there is none).
    dead_lettered: tuple[Record, ...] = ()
    # Did not match the filter patterns; settled like successes but never invoked.
    filtered: tuple[Record, ...] = ()
    # The last invocation error, if any, for logs.
    error: LambdaError | None = None
