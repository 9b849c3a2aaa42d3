"""Where events come from and where failures go: the event source models and their destinations.

:data:`EVENT_SOURCE_CLASSES` is the one list of event source models; a new event type is one model
here plus one entry there (and in :data:`EventSourceConfig`).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from pipelined.config.eventbridge import EventBridgeSource
from pipelined.config.http_events import ApiSource, FunctionUrlSource, HttpApiSource
from pipelined.config.types import (
    ARN_PARTITION,
    QUEUE_ARN,
    QUEUE_URL,
    TOPIC_ARN,
    BatchWindow,
    ConfigModel,
    Duration,
    EventName,
    FieldValueError,
    Filters,
    MqttFilter,
    QueueRef,
    format_duration,
    matches,
    parse_duration,
)
from pipelined.core.schedules import ScheduleExpressionError, parse_schedule, validate_timezone

# --- destinations and retries ----------------------------------------------------------------


class DestinationConfig(ConfigModel):
    """Where failure records go: "sqlite" (the state store), an SQS queue or an SNS topic."""

    destination: Annotated[
        str,
        AfterValidator(
            matches(
                f"sqlite|{QUEUE_URL}|{QUEUE_ARN}|{TOPIC_ARN}",
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
        return "sns" if re.fullmatch(TOPIC_ARN, self.destination) else "sqs"


class RetryBackoff(ConfigModel):
    """The delay before a failed message is redelivered: exponential from base, capped at max."""

    base: Duration = Field(default=1.0, ge=0)
    max: Duration = Field(default=300.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> RetryBackoff:
        if self.max < self.base:
            raise FieldValueError(("max",), f"must not be less than base ({format_duration(self.base)})")
        return self


# --- event sources ---------------------------------------------------------------------------

# The list defaults below are safe, pydantic copies them; ruff flags them (RUF012) only because it
# cannot see that ConfigModel, defined in another module, is a pydantic model.


class _SourceBase(ConfigModel):
    name: EventName | None = None
    enabled: bool = True


class ScheduleSource(_SourceBase):
    """An EventBridge Scheduler-like schedule: rate(), cron() or at() in a time zone."""

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
    """An SQS queue polled in batches, as a Lambda event source mapping does."""

    type: Literal["sqs"]
    queue: QueueRef
    batch_size: int = Field(default=10, ge=1, le=10000)
    maximum_batching_window: BatchWindow = 0.0
    report_batch_item_failures: bool = False
    maximum_concurrency: int = Field(default=5, ge=2, le=1000)
    filter_patterns: Filters = []  # noqa: RUF012
    visibility_timeout: Annotated[Duration, Field(ge=0, le=43200)] | None = None
    retry_backoff: RetryBackoff = RetryBackoff()

    @model_validator(mode="after")
    def _batching(self) -> SqsSource:
        _batching_rule(self.batch_size, self.maximum_batching_window)
        return self


def _record_age(value: object) -> float:
    if not isinstance(value, bool) and value in (-1, "-1"):
        return -1.0
    seconds = parse_duration(value)
    if not 60 <= seconds <= 604800:
        raise ValueError(f"must be -1 (no limit) or between 1m and 7d, got {format_duration(seconds)}")
    return seconds


class _StreamSourceBase(_SourceBase):
    batch_size: int = Field(default=100, ge=1, le=10000)
    maximum_batching_window: BatchWindow = 0.0
    maximum_retry_attempts: int = Field(default=-1, ge=-1, le=10000)
    maximum_record_age: Annotated[float, BeforeValidator(_record_age)] = -1.0
    bisect_batch_on_function_error: bool = False
    parallelization_factor: int = Field(default=1, ge=1, le=10)
    report_batch_item_failures: bool = False
    filter_patterns: Filters = []  # noqa: RUF012
    on_failure: DestinationConfig | None = None


class DynamoDBStreamSource(_StreamSourceBase):
    """A DynamoDB table's stream, given by table name or stream ARN."""

    type: Literal["dynamodb_stream"]
    table: (
        Annotated[str, AfterValidator(matches(r"[A-Za-z0-9_.-]{3,255}", "a DynamoDB table name"))] | None
    ) = None
    stream_arn: (
        Annotated[
            str,
            AfterValidator(
                matches(
                    rf"{ARN_PARTITION}:dynamodb:[a-z0-9-]+:\d{{12}}:table/[^/]+/stream/\S+", "a stream ARN"
                )
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
    """A Kinesis data stream, given by name or ARN."""

    type: Literal["kinesis"]
    stream: Annotated[
        str,
        AfterValidator(
            matches(
                rf"[A-Za-z0-9_.-]{{1,128}}|{ARN_PARTITION}:kinesis:[a-z0-9-]+:\d{{12}}:stream/[A-Za-z0-9_.-]{{1,128}}",
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
    """How an S3 bucket's notifications arrive: through an SQS queue or an MQTT topic filter."""

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
    """S3 bucket notifications (filtered by event type, prefix and suffix), delivered via SQS or MQTT."""

    type: Literal["s3"]
    bucket: Annotated[str, AfterValidator(matches(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "an S3 bucket name"))]
    events: Annotated[list[str], AfterValidator(_s3_events)] = ["s3:ObjectCreated:*"]  # noqa: RUF012
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
    """Messages on an MQTT topic filter of the broker configured under `mqtt`."""

    type: Literal["mqtt"]
    topic: MqttFilter
    qos: int = Field(default=1, ge=0, le=2)
    batch_size: int = Field(default=10, ge=1, le=10000)
    maximum_batching_window: BatchWindow = 0.0
    filter_patterns: Filters = []  # noqa: RUF012
    maximum_retry_attempts: int = Field(default=2, ge=0, le=185)
    retry_backoff: RetryBackoff = RetryBackoff()


EventSourceConfig = Annotated[
    ScheduleSource
    | SqsSource
    | DynamoDBStreamSource
    | KinesisSource
    | S3Source
    | MqttSource
    | ApiSource
    | HttpApiSource
    | FunctionUrlSource
    | EventBridgeSource,
    Field(discriminator="type"),
]

EVENT_SOURCE_CLASSES: dict[str, type[ConfigModel]] = {
    "schedule": ScheduleSource,
    "sqs": SqsSource,
    "dynamodb_stream": DynamoDBStreamSource,
    "kinesis": KinesisSource,
    "s3": S3Source,
    "mqtt": MqttSource,
    # HTTP triggers (config/http_events.py): routes of the gateway, not polled sources.
    "api": ApiSource,
    "http_api": HttpApiSource,
    "function_url": FunctionUrlSource,
    # Rules on an event bus (config/eventbridge.py): PutEvents routes to them, nothing is polled.
    "eventbridge": EventBridgeSource,
}
