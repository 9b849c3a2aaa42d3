"""The event types pipelined knows: one entry each, naming its config model, its factory and its traits.

A new event type is its config model (config/events.py), its source module, and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipelined.config import (
    ApiSource,
    DynamoDBStreamSource,
    EventBridgeSource,
    EventSourceConfig,
    FunctionConfig,
    FunctionUrlSource,
    HttpApiSource,
    KinesisSource,
    MqttSource,
    S3Source,
    ScheduleSource,
    SqsSource,
)
from pipelined.errors import SourceError
from pipelined.sources.base import PushSource, Source, SourceContext
from pipelined.sources.resources import DevResources

SourceFactory = Callable[[EventSourceConfig, SourceContext], Source | PushSource]
# Adds what dev mode must create for one source of one function.
DevResourcesOf = Callable[[EventSourceConfig, FunctionConfig, DevResources], None]


@dataclass(frozen=True, slots=True)
class EventType:
    """One kind of event source."""

    name: str
    model: type
    build: SourceFactory
    # True: the upstream retries failed records (SQS redrive); else the daemon does, then on_failure.
    upstream_retries: bool = False
    # True: the source keeps stream checkpoints (`pipelined checkpoints`).
    checkpoints: bool = False
    dev_resources: DevResourcesOf | None = None
    # True: an HTTP trigger, served as a route by the gateway (pipelined/http/gateway.py), never polled.
    http_route: bool = False
    # True: a rule on an event bus, routed to by PutEvents (pipelined/sources/eventbridge.py), never polled.
    bus_rule: bool = False

    @property
    def has_runner(self) -> bool:
        """Whether a source runner polls or is pushed this type's events (else a front door routes them)."""
        return not (self.http_route or self.bus_rule)


def _schedule(cfg: EventSourceConfig, ctx: SourceContext) -> Source:
    from pipelined.sources.schedule import ScheduleEventSource

    assert isinstance(cfg, ScheduleSource)
    return ScheduleEventSource(
        ctx.function.name, cfg, ctx.state, ctx.function.region, ctx.function.account, leases=ctx.leases
    )


def _sqs(cfg: EventSourceConfig, ctx: SourceContext) -> Source:
    from pipelined.sources.sqs.factory import sqs_source

    assert isinstance(cfg, SqsSource)
    return sqs_source(cfg, ctx)


def _s3(cfg: EventSourceConfig, ctx: SourceContext) -> Source | PushSource:
    assert isinstance(cfg, S3Source)
    if cfg.via.sqs is not None:
        from pipelined.sources.s3.via_sqs import s3_via_sqs_source

        return s3_via_sqs_source(cfg, ctx)
    from pipelined.sources.s3.via_mqtt import build_s3_via_mqtt  # via: {mqtt: ...} (MinIO)

    return build_s3_via_mqtt(cfg, ctx)


def _mqtt(cfg: EventSourceConfig, ctx: SourceContext) -> PushSource:
    from pipelined.sources.mqtt.source import build_mqtt

    return build_mqtt(cfg, ctx)


def _dynamodb_stream(cfg: EventSourceConfig, ctx: SourceContext) -> PushSource:
    from pipelined.sources.streams.dynamodb import dynamodb_stream_source

    assert isinstance(cfg, DynamoDBStreamSource)
    return dynamodb_stream_source(ctx.function, cfg, ctx.checkpointer, ctx.leases, ctx.aws)


def _kinesis(cfg: EventSourceConfig, ctx: SourceContext) -> PushSource:
    from pipelined.sources.streams.kinesis import kinesis_source

    assert isinstance(cfg, KinesisSource)
    return kinesis_source(ctx.function, cfg, ctx.checkpointer, ctx.leases, ctx.aws)


def _http_route(cfg: EventSourceConfig, ctx: SourceContext) -> Source:
    raise SourceError(f"function {ctx.function.name}: {cfg.type} events are gateway routes, not sources")


def _bus_rule(cfg: EventSourceConfig, ctx: SourceContext) -> Source:
    raise SourceError(f"function {ctx.function.name}: {cfg.type} events are rules of a bus, not sources")


def _dev_sqs(cfg: EventSourceConfig, fn: FunctionConfig, found: DevResources) -> None:
    from pipelined.sources.sqs.factory import dev_resources

    dev_resources(cfg, fn, found)


def _dev_s3(cfg: EventSourceConfig, fn: FunctionConfig, found: DevResources) -> None:
    from pipelined.sources.s3.via_sqs import dev_resources

    dev_resources(cfg, fn, found)


def _dev_rule(cfg: EventSourceConfig, fn: FunctionConfig, found: DevResources) -> None:
    from pipelined.sources.eventbridge import dev_resources

    dev_resources(cfg, fn, found)


def _dev_stream(cfg: EventSourceConfig, fn: FunctionConfig, found: DevResources) -> None:
    from pipelined.sources.streams.engine import dev_resources

    dev_resources(cfg, fn, found)


EVENT_TYPES: dict[str, EventType] = {
    entry.name: entry
    for entry in (
        EventType("schedule", ScheduleSource, _schedule),
        EventType("sqs", SqsSource, _sqs, upstream_retries=True, dev_resources=_dev_sqs),
        EventType(
            "dynamodb_stream",
            DynamoDBStreamSource,
            _dynamodb_stream,
            checkpoints=True,
            dev_resources=_dev_stream,
        ),
        EventType("kinesis", KinesisSource, _kinesis, checkpoints=True, dev_resources=_dev_stream),
        EventType("s3", S3Source, _s3, dev_resources=_dev_s3),
        EventType("mqtt", MqttSource, _mqtt),
        EventType("api", ApiSource, _http_route, http_route=True),
        EventType("http_api", HttpApiSource, _http_route, http_route=True),
        EventType("function_url", FunctionUrlSource, _http_route, http_route=True),
        EventType("eventbridge", EventBridgeSource, _bus_rule, bus_rule=True, dev_resources=_dev_rule),
    )
}


def event_type(name: str) -> EventType:
    """The registry entry of an event source type; SourceError naming the supported ones if unknown."""
    entry = EVENT_TYPES.get(name)
    if entry is None:
        raise SourceError(
            f"event source type '{name}' is not supported by this version "
            f"of pipelined (supported: {', '.join(sorted(EVENT_TYPES))})"
        )
    return entry


def build_source(cfg: EventSourceConfig, ctx: SourceContext) -> Source | PushSource:
    """The source object for one `events:` entry of a function."""
    try:
        entry = event_type(cfg.type)
    except SourceError as exc:
        raise SourceError(f"function {ctx.function.name}: {exc}") from None
    return entry.build(cfg, ctx)
