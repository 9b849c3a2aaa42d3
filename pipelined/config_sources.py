"""Configuration building blocks: durations, paths, destinations and the event source models.

Re-exported by :mod:`pipelined.config`; import from there.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipelined.core.filtering import FilterPatternError, validate_patterns
from pipelined.core.schedules import ScheduleExpressionError, parse_schedule, validate_timezone


class FieldValueError(ValueError):
    """A validation error a model-level check attributes to one of its fields (by relative path)."""

    def __init__(self, field: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.field = field


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- durations -------------------------------------------------------------------------------

_UNITS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600), "d": Decimal(86400)}
_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_PART = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)\s*")
_COMPOUND = re.compile(rf"(?:{_PART.pattern})+")


def parse_duration(value: object) -> float:
    """Seconds from a number of seconds or a string like "500ms", "30s", "5m", "1h", "7d", "1h30m"."""
    seconds: float
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a duration such as 30, '500ms' or '5m', got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("-"):
            raise ValueError(f"invalid duration {value!r}: must not be negative")
        if _NUMBER.fullmatch(text):
            seconds = float(Decimal(text))
        elif _COMPOUND.fullmatch(text):
            seconds = float(sum(Decimal(num) * _UNITS[unit] for num, unit in _PART.findall(text)))
        else:
            raise ValueError(
                f"invalid duration {value!r}: expected seconds or a number with a unit "
                "(ms, s, m, h, d), e.g. '500ms', '30s', '5m', '1h30m'"
            )
    else:
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    if not math.isfinite(seconds):
        raise ValueError(f"invalid duration {value!r}: must be a finite number")
    if seconds < 0:
        raise ValueError(f"invalid duration {value!r}: must not be negative")
    return seconds + 0.0  # turns -0.0 into 0.0


def format_duration(seconds: float) -> str:
    """Shortest exact rendering with the largest unit: 21600 -> "6h", 0.5 -> "500ms"."""
    if seconds <= 0:
        return f"{seconds:g}"
    for unit in ("d", "h", "m", "s"):
        count = Decimal(repr(float(seconds))) / _UNITS[unit]
        if count == count.to_integral_value():
            return f"{int(count)}{unit}"
    return f"{seconds * 1000:g}ms"


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _record_age(value: object) -> float:
    if not isinstance(value, bool) and value in (-1, "-1"):
        return -1.0
    seconds = parse_duration(value)
    if not 60 <= seconds <= 604800:
        raise ValueError(f"must be -1 (no limit) or between 1m and 7d, got {format_duration(seconds)}")
    return seconds


# --- paths (resolved against the config file's directory when loaded by load_config) ---------


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if base is None:
        return value
    return Path(os.path.normpath(Path(base) / value.expanduser()))


def _exists(kind: Literal["dir", "file"]) -> Any:
    def check(value: Path, info: ValidationInfo) -> Path:
        if (info.context or {}).get("check_files"):
            if not value.exists():
                raise ValueError(f"{value} does not exist")
            if kind == "dir" and not value.is_dir():
                raise ValueError(f"{value} is not a directory")
            if kind == "file" and not value.is_file():
                raise ValueError(f"{value} is not a file")
        return value

    return check


ConfigPath = Annotated[Path, AfterValidator(_resolve)]
DirPath = Annotated[Path, AfterValidator(_resolve), AfterValidator(_exists("dir"))]
FilePath = Annotated[Path, AfterValidator(_resolve), AfterValidator(_exists("file"))]


# --- small validators ------------------------------------------------------------------------


def matches(pattern: str, what: str) -> Callable[[str], str]:
    """An after-validator: the whole string must match ``pattern``; else 'must be WHAT, got ...'."""
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if not regex.fullmatch(value):
            raise ValueError(f"must be {what}, got {value!r}")
        return value

    return check


def _mqtt_filter(topic: str) -> str:
    if not topic:
        raise ValueError("must not be empty")
    levels = topic.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise ValueError(f"invalid MQTT topic filter {topic!r}: '#' must be the whole last level")
        if "+" in level and level != "+":
            raise ValueError(f"invalid MQTT topic filter {topic!r}: '+' must be a whole level")
    if "\0" in topic:
        raise ValueError("must not contain NUL characters")
    return topic


def _patterns(patterns: list[Any]) -> list[Any]:
    try:
        validate_patterns(patterns)
    except FilterPatternError as exc:
        raise ValueError(f"invalid filter pattern: {exc}") from None
    return patterns


_PARTITION = r"arn:aws(?:-[a-z]+)*"
_QUEUE_NAME = r"[A-Za-z0-9_-]{1,80}(?:\.fifo)?"
_QUEUE_URL = rf"https?://[^/\s]+(?:/[^/\s]+)*/{_QUEUE_NAME}"
_QUEUE_ARN = rf"{_PARTITION}:sqs:[a-z0-9-]+:\d{{12}}:{_QUEUE_NAME}"
_TOPIC_ARN = rf"{_PARTITION}:sns:[a-z0-9-]+:\d{{12}}:[A-Za-z0-9_-]{{1,256}}(?:\.fifo)?"
QueueRef = Annotated[
    str, AfterValidator(matches(f"{_QUEUE_URL}|{_QUEUE_ARN}|{_QUEUE_NAME}", "an SQS queue URL, ARN or name"))
]
Filters = Annotated[list[Any], AfterValidator(_patterns)]
EventName = Annotated[str, AfterValidator(matches(r"[A-Za-z0-9_.-]+", "letters, digits, '_', '.' or '-'"))]
MqttFilter = Annotated[str, AfterValidator(_mqtt_filter)]
BatchWindow = Annotated[Duration, Field(ge=0, le=300)]


# --- destinations and retries ----------------------------------------------------------------


class DestinationConfig(ConfigModel):
    """Where failure records go: "sqlite" (the state store), an SQS queue or an SNS topic."""

    destination: Annotated[
        str,
        AfterValidator(
            matches(
                f"sqlite|{_QUEUE_URL}|{_QUEUE_ARN}|{_TOPIC_ARN}",
                "'sqlite', an SQS queue URL or ARN, or an SNS topic ARN",
            )
        ),
    ]

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"destination": data} if isinstance(data, str) else data

    @property
    def kind(self) -> Literal["sqlite", "sqs", "sns"]:
        if self.destination == "sqlite":
            return "sqlite"
        return "sns" if re.fullmatch(_TOPIC_ARN, self.destination) else "sqs"


class RetryBackoff(ConfigModel):
    base: Duration = Field(default=1.0, ge=0)
    max: Duration = Field(default=300.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> RetryBackoff:
        if self.max < self.base:
            raise FieldValueError(("max",), f"must not be less than base ({format_duration(self.base)})")
        return self


# --- event sources ---------------------------------------------------------------------------


class _SourceBase(ConfigModel):
    name: EventName | None = None
    enabled: bool = True


class ScheduleSource(_SourceBase):
    type: Literal["schedule"]
    expression: str
    timezone: str = "UTC"
    input: Any = None
    catch_up: Literal["none", "latest", "all"] = "latest"
    maximum_retry_attempts: int = Field(default=2, ge=0, le=2)
    maximum_event_age: Duration = Field(default=21600.0, ge=60, le=21600)

    @field_validator("expression")
    @classmethod
    def _expression(cls, value: str) -> str:
        try:
            parse_schedule(value)
        except ScheduleExpressionError as exc:
            detail = str(exc)
            for prefix in (f"{value.strip()}: ", f"'{value}' is not a schedule expression: "):
                detail = detail.removeprefix(prefix)
            raise ValueError(f"invalid schedule expression {value!r}: {detail}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            validate_timezone(value)
        except ScheduleExpressionError as exc:
            raise ValueError(str(exc)) from None
        return value


def _batching_rule(batch_size: int, window: float) -> None:
    if batch_size > 10 and window < 1:
        raise FieldValueError(
            ("batch_size",),
            "a batch_size above 10 requires maximum_batching_window of at least 1s (as in AWS Lambda)",
        )


class SqsSource(_SourceBase):
    type: Literal["sqs"]
    queue: QueueRef
    batch_size: int = Field(default=10, ge=1, le=10000)
    maximum_batching_window: BatchWindow = 0.0
    report_batch_item_failures: bool = False
    maximum_concurrency: int = Field(default=5, ge=2, le=1000)
    filter_patterns: Filters = []
    visibility_timeout: Annotated[Duration, Field(ge=0, le=43200)] | None = None
    retry_backoff: RetryBackoff = RetryBackoff()

    @model_validator(mode="after")
    def _batching(self) -> SqsSource:
        _batching_rule(self.batch_size, self.maximum_batching_window)
        return self


class _StreamSourceBase(_SourceBase):
    batch_size: int = Field(default=100, ge=1, le=10000)
    maximum_batching_window: BatchWindow = 0.0
    maximum_retry_attempts: int = Field(default=-1, ge=-1, le=10000)
    maximum_record_age: Annotated[float, BeforeValidator(_record_age)] = -1.0
    bisect_batch_on_function_error: bool = False
    parallelization_factor: int = Field(default=1, ge=1, le=10)
    report_batch_item_failures: bool = False
    filter_patterns: Filters = []
    on_failure: DestinationConfig | None = None


class DynamoDBStreamSource(_StreamSourceBase):
    type: Literal["dynamodb_stream"]
    table: (
        Annotated[str, AfterValidator(matches(r"[A-Za-z0-9_.-]{3,255}", "a DynamoDB table name"))] | None
    ) = None
    stream_arn: (
        Annotated[
            str,
            AfterValidator(
                matches(rf"{_PARTITION}:dynamodb:[a-z0-9-]+:\d{{12}}:table/[^/]+/stream/\S+", "a stream ARN")
            ),
        ]
        | None
    ) = None
    starting_position: Literal["TRIM_HORIZON", "LATEST"] = "TRIM_HORIZON"

    @model_validator(mode="before")
    @classmethod
    def _one_of(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if data.get("table") is not None and data.get("stream_arn") is not None:
                raise FieldValueError(("stream_arn",), "give either table or stream_arn, not both")
            if data.get("table") is None and data.get("stream_arn") is None:
                raise FieldValueError(("table",), "one of table or stream_arn is required")
        return data


class KinesisSource(_StreamSourceBase):
    type: Literal["kinesis"]
    stream: Annotated[
        str,
        AfterValidator(
            matches(
                rf"[A-Za-z0-9_.-]{{1,128}}|{_PARTITION}:kinesis:[a-z0-9-]+:\d{{12}}:stream/[A-Za-z0-9_.-]{{1,128}}",
                "a Kinesis stream name or ARN",
            )
        ),
    ]
    starting_position: Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"] = "LATEST"
    starting_position_timestamp: datetime | None = None

    @field_validator("starting_position_timestamp", mode="before")
    @classmethod
    def _timestamp_in(cls, value: Any) -> Any:
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        return value

    @field_validator("starting_position_timestamp")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    @model_validator(mode="after")
    def _timestamp(self) -> KinesisSource:
        at_timestamp = self.starting_position == "AT_TIMESTAMP"
        if at_timestamp and self.starting_position_timestamp is None:
            raise FieldValueError(
                ("starting_position_timestamp",), "required when starting_position is AT_TIMESTAMP"
            )
        if not at_timestamp and self.starting_position_timestamp is not None:
            raise FieldValueError(
                ("starting_position_timestamp",), "only allowed when starting_position is AT_TIMESTAMP"
            )
        return self


class S3Via(ConfigModel):
    sqs: QueueRef | None = None
    mqtt: MqttFilter | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_of(cls, data: Any) -> Any:
        if isinstance(data, dict) and (data.get("sqs") is None) == (data.get("mqtt") is None):
            raise ValueError("give exactly one of sqs (a queue) or mqtt (a topic filter)")
        return data


def _s3_events(events: list[str]) -> list[str]:
    if not events:
        raise ValueError("must list at least one event type, e.g. 's3:ObjectCreated:*'")
    for event in events:
        if not event.startswith("s3:"):
            raise ValueError(f"S3 event types start with 's3:', got {event!r}")
    return events


class S3Source(_SourceBase):
    type: Literal["s3"]
    bucket: Annotated[str, AfterValidator(matches(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "an S3 bucket name"))]
    events: Annotated[list[str], AfterValidator(_s3_events)] = ["s3:ObjectCreated:*"]
    prefix: str = ""
    suffix: str = ""
    via: S3Via
    batch_size: int = Field(default=10, ge=1, le=10000)
    maximum_batching_window: BatchWindow = 0.0
    report_batch_item_failures: bool = False
    maximum_concurrency: int = Field(default=5, ge=2, le=1000)
    maximum_retry_attempts: int = Field(default=2, ge=0, le=185)
    retry_backoff: RetryBackoff = RetryBackoff()


class MqttSource(_SourceBase):
    type: Literal["mqtt"]
    topic: MqttFilter
    qos: int = Field(default=1, ge=0, le=2)
    batch_size: int = Field(default=10, ge=1, le=10000)
    maximum_batching_window: BatchWindow = 0.0
    filter_patterns: Filters = []
    maximum_retry_attempts: int = Field(default=2, ge=0, le=185)
    retry_backoff: RetryBackoff = RetryBackoff()


EventSourceConfig = Annotated[
    ScheduleSource | SqsSource | DynamoDBStreamSource | KinesisSource | S3Source | MqttSource,
    Field(discriminator="type"),
]

EVENT_SOURCE_CLASSES: dict[str, type[_SourceBase]] = {
    "schedule": ScheduleSource,
    "sqs": SqsSource,
    "dynamodb_stream": DynamoDBStreamSource,
    "kinesis": KinesisSource,
    "s3": S3Source,
    "mqtt": MqttSource,
}
