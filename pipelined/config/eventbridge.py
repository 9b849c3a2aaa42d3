"""EventBridge in the file: the top-level `event_buses:` and a function's `type: eventbridge` rules.

A rule is not a polled source: PutEvents (pipelined/http/eventbridge_api.py) matches each event against
the rules of its bus and queues one asynchronous invocation per match.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from pipelined.config.types import (
    QUEUE_ARN,
    QUEUE_URL,
    ConfigModel,
    Duration,
    EventName,
    FieldValueError,
    matches,
)
from pipelined.core.event_input import InputError, compile_path, compile_transformer
from pipelined.core.event_patterns import FilterPatternError, compile_pattern

BusName = Annotated[
    str, AfterValidator(matches(r"[A-Za-z0-9._\-]{1,256}", "letters, digits, '.', '_' or '-'"))
]


class ArchiveConfig(ConfigModel):
    """Keep a bus's events for `retention` (0: forever), so that they can be replayed."""

    retention: Duration = Field(default=0.0, ge=0)


class EventBusConfig(ConfigModel):
    """A custom event bus (the `default` bus always exists)."""

    description: str | None = None
    archive: ArchiveConfig | None = None


class InputTransformerConfig(ConfigModel):
    """EventBridge's InputTransformer: values picked from the event by JSONPath, filled into a template."""

    input_paths_map: dict[str, str] = Field(default_factory=dict)
    input_template: str

    @model_validator(mode="after")
    def _compiles(self) -> InputTransformerConfig:
        try:
            compile_transformer(self.input_paths_map, self.input_template)
        except InputError as exc:
            field, _, message = str(exc).partition(": ")
            raise FieldValueError(tuple(field.split(".")), message) from None
        return self


class RulePolicyConfig(ConfigModel):
    """A rule target's RetryPolicy, and the backoff between its retries."""

    maximum_retry_attempts: int = Field(default=185, ge=0, le=185)
    maximum_event_age: Duration = Field(default=86400.0, ge=60, le=86400)
    # EventBridge backs off exponentially with jitter; the first delay and the longest one.
    backoff_base: Duration = Field(default=1.0, ge=0)
    backoff_max: Duration = Field(default=300.0, ge=0)


def _pattern(value: Any) -> Any:
    try:
        compile_pattern(value)
    except FilterPatternError as exc:
        raise ValueError(f"invalid event pattern: {exc}") from None
    return value


def _json_text(value: Any) -> Any:
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError as exc:
            raise ValueError(f"input given as text must be valid JSON: {exc}") from None
    return value


def _input_path(value: str) -> str:
    try:
        compile_path(value)
    except InputError as exc:
        raise ValueError(str(exc)) from None
    return value


class EventBridgeSource(ConfigModel):
    """A rule on an event bus (SAM's EventBridgeRule): matching events invoke the function asynchronously."""

    type: Literal["eventbridge"]
    name: EventName | None = None
    enabled: bool = True
    bus: BusName = "default"
    description: str | None = None
    pattern: Annotated[Any, AfterValidator(_pattern)]
    input: Annotated[Any, AfterValidator(_json_text)] = None
    input_path: Annotated[str, AfterValidator(_input_path)] | None = None
    input_transformer: InputTransformerConfig | None = None
    retry_policy: RulePolicyConfig = RulePolicyConfig()
    # Where an event goes once its retries or age run out: the local store or an SQS queue (never dropped).
    dead_letter: Annotated[
        str, AfterValidator(matches(f"sqlite|{QUEUE_URL}|{QUEUE_ARN}", "'sqlite' or an SQS queue URL or ARN"))
    ] = "sqlite"

    @field_validator("dead_letter", mode="before")
    @classmethod
    def _dead_letter_shorthand(cls, value: Any) -> Any:
        # SAM's DeadLetterConfig names the queue under Arn; {destination: ...} as the other destinations.
        if isinstance(value, dict) and len(value) == 1:
            return next(iter(value.values()))
        return value

    @model_validator(mode="after")
    def _one_input(self) -> EventBridgeSource:
        given = [f for f in ("input", "input_path", "input_transformer") if getattr(self, f) is not None]
        if len(given) > 1:
            raise FieldValueError((given[1],), "give at most one of input, input_path and input_transformer")
        return self

    @property
    def pattern_json(self) -> str:
        """The pattern as JSON text (DescribeRule's EventPattern)."""
        return self.pattern if isinstance(self.pattern, str) else json.dumps(self.pattern)
