"""What the stream engine and its adapters share: shards, positions, pages, checkpoint values, errors."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

from pipelined.aws import aws_error
from pipelined.core.records import Record
from pipelined.core.timestamps import iso_seconds
from pipelined.errors import SourceError

# --- checkpoint values (the `sequence` column of the checkpoints table) ---------------------------
# A bare sequence number means "processed up to and including this record".
SHARD_END = "SHARD_END"  # the shard was read to its end and every record settled (KCL's sentinel)
TRIM_HORIZON = "TRIM_HORIZON"  # start from the oldest record still in the shard
AT_SEQUENCE = "AT:"  # `checkpoints reset --to SEQ`: deliver this record again
AT_TIMESTAMP = "AT_TIMESTAMP:"  # records that arrived at or after this epoch time

T = TypeVar("T")

# A LATEST start is remembered as "records that arrived after the start time minus this", so a restart
# or an iterator renewal before the first record misses nothing (clock skew, DynamoDB's whole seconds).
LATEST_MARGIN = 5.0

PositionKind = Literal[
    "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"
]


@dataclass(frozen=True, slots=True)
class Position:
    """Where a shard iterator starts."""

    kind: PositionKind
    sequence: str | None = None
    timestamp: float | None = None

    def __str__(self) -> str:
        if self.sequence is not None:
            return f"{self.kind} {self.sequence}"
        if self.timestamp is not None:
            return f"{self.kind} {iso_seconds(self.timestamp)}"
        return self.kind


def parse_checkpoint(value: str) -> Position | None:
    """The position a stored checkpoint resumes from; None for SHARD_END (nothing left to read)."""
    if value == SHARD_END:
        return None
    if value == TRIM_HORIZON:
        return Position("TRIM_HORIZON")
    if value == "LATEST":
        return Position("LATEST")
    if value.startswith(AT_SEQUENCE):
        return Position("AT_SEQUENCE_NUMBER", sequence=value.removeprefix(AT_SEQUENCE))
    if value.startswith(AT_TIMESTAMP):
        return Position("AT_TIMESTAMP", timestamp=float(value.removeprefix(AT_TIMESTAMP)))
    return Position("AFTER_SEQUENCE_NUMBER", sequence=value)


def is_sequence_number(value: str) -> bool:
    """True for a Kinesis/DynamoDB sequence number (decimal digits)."""
    return value.isascii() and value.isdigit()


def epoch(value: Any) -> float:
    """Epoch seconds from a botocore timestamp (datetime) or a number."""
    return value.timestamp() if isinstance(value, datetime) else float(value)


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """One shard as DescribeStream/ListShards describes it."""

    shard_id: str
    # ParentShardId and AdjacentParentShardId (a merge has two parents).
    parents: tuple[str, ...] = ()
    starting_sequence: str | None = None
    # Set once the shard is closed (split, merged or rolled over): nothing is written after it.
    ending_sequence: str | None = None

    @property
    def closed(self) -> bool:
        """True when the shard takes no more writes."""
        return self.ending_sequence is not None


def shard_info(raw: Mapping[str, Any]) -> ShardInfo:
    """A ShardInfo from a Shard structure, which Kinesis and DynamoDB Streams spell the same way."""
    parents = tuple(p for p in (raw.get("ParentShardId"), raw.get("AdjacentParentShardId")) if p)
    numbers = raw.get("SequenceNumberRange") or {}
    return ShardInfo(
        raw["ShardId"], parents, numbers.get("StartingSequenceNumber"), numbers.get("EndingSequenceNumber")
    )


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """A record as an adapter hands it to the engine: the Lambda-shaped Record plus routing facts."""

    record: Record
    # Partition key (Kinesis) or item key (DynamoDB): records with equal keys keep their order.
    ordering_key: str
    # Approximate bytes in the event, to keep a batch under Lambda's 6 MB payload limit.
    size: int


@dataclass(frozen=True, slots=True)
class Page:
    """One GetRecords response."""

    records: Sequence[StreamRecord]
    # None once a closed shard has been read to its end.
    next_iterator: str | None
    # More records are already waiting (MillisBehindLatest > 0): fetch again without idling.
    behind: bool = False


class StreamAdapter(Protocol):
    """The API calls and record shapes of one stream service; the engine does everything else."""

    # The key of the failure record's batch info: "KinesisBatchInfo" or "DDBStreamBatchInfo".
    batch_info_key: str
    # The most records one GetRecords call may return.
    max_fetch: int
    # Seconds between GetRecords calls on a shard that had nothing new.
    idle_poll_interval: float
    # Seconds between GetRecords calls on a shard that is behind (stays under per-shard read limits).
    busy_poll_interval: float
    # False: AT_TIMESTAMP is emulated by reading from TRIM_HORIZON and skipping older records.
    supports_at_timestamp: bool

    async def resolve(self) -> str:
        """Check the stream exists and return its ARN."""

    async def list_shards(self) -> list[ShardInfo]:
        """Every shard the service still lists, parents included."""

    async def shard_iterator(self, shard_id: str, position: Position) -> str:
        """A new shard iterator at `position`."""

    async def get_records(self, shard_id: str, iterator: str, limit: int) -> Page:
        """The next records after `iterator`, converted to Lambda's shape."""

    def arrival_text(self, ts: float) -> str:
        """An arrival time as the failure record's approximateArrivalOf* fields show it."""


class IteratorExpiredError(SourceError):
    """The shard iterator expired (Kinesis: after 5 minutes unused); open a new one."""


class DataTrimmedError(SourceError):
    """The position asked for is older than the stream's retention (TrimmedDataAccessException)."""


class ShardGoneError(SourceError):
    """The shard no longer exists (ResourceNotFoundException)."""


# AWS error codes the engine reacts to; every other error is retried with backoff.
_ERRORS: dict[str, type[SourceError]] = {
    "ExpiredIteratorException": IteratorExpiredError,
    "TrimmedDataAccessException": DataTrimmedError,
    "ResourceNotFoundException": ShardGoneError,
}


def translate_error(exc: Exception) -> Exception:
    """The engine's exception for a botocore ClientError it knows; otherwise `exc` itself."""
    error = aws_error(exc)
    code = error.get("Code")
    kind = _ERRORS.get(code) if isinstance(code, str) else None
    if kind is None:
        return exc
    return kind(f"{code}: {error.get('Message', '')}")


async def aws_call(awaitable: Awaitable[T]) -> T:
    """Await an AWS call, turning the errors the engine reacts to into its own exceptions."""
    try:
        return await awaitable
    except Exception as exc:
        translated = translate_error(exc)
        if translated is exc:
            raise
        raise translated from exc
