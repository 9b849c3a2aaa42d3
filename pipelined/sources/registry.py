"""Event sources, one module each, all behind the `Source` protocol in `base`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipelined.aws import AwsClients
from pipelined.config import Config, EventSourceConfig
from pipelined.errors import SourceError
from pipelined.observe.metrics import Metrics
from pipelined.sources.base import Source
from pipelined.state import StateStore
from pipelined.state.interfaces import LOCAL_LEASES, Checkpointer, Leases, LocalCheckpointer


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What a source may need from the daemon: the config, the state store and leases, AWS clients."""

    function: str
    config: Config
    state: StateStore
    aws: AwsClients
    # The daemon's metrics, for counts only the source can make (SQS "deleted", S3 records filtered).
    metrics: Metrics | None = None
    # Who reads which shard and fires which schedule: this daemon alone, until several share the work.
    leases: Leases = LOCAL_LEASES

    @property
    def checkpointer(self) -> Checkpointer:
        """Where stream sources keep their shards' positions: this daemon's state file."""
        return LocalCheckpointer(self.state.checkpoints, self.state.markers)


SourceFactory = Callable[[EventSourceConfig, SourceContext], Source]


def _schedule(cfg: EventSourceConfig, ctx: SourceContext) -> Source:
    from pipelined.config import ScheduleSource
    from pipelined.sources.schedule import ScheduleEventSource

    assert isinstance(cfg, ScheduleSource)
    return ScheduleEventSource(ctx.function, cfg, ctx.state, ctx.config.aws.region, leases=ctx.leases)


def _sqs(cfg: EventSourceConfig, ctx: SourceContext) -> Source:
    from pipelined.config import SqsSource
    from pipelined.sources.sqs.source import sqs_source

    assert isinstance(cfg, SqsSource)
    return sqs_source(cfg, ctx)


def _s3(cfg: EventSourceConfig, ctx: SourceContext) -> Source:
    from pipelined.config import S3Source

    assert isinstance(cfg, S3Source)
    if cfg.via.sqs is not None:
        from pipelined.sources.s3.via_sqs import s3_via_sqs_source

        return s3_via_sqs_source(cfg, ctx)
    from pipelined.sources.s3.via_mqtt import build_s3_via_mqtt  # via: {mqtt: ...} (MinIO)

    return build_s3_via_mqtt(cfg, ctx)


def _mqtt(cfg: EventSourceConfig, ctx: SourceContext) -> Source:
    from pipelined.sources.mqtt.source import build_mqtt

    return build_mqtt(cfg, ctx)


def _dynamodb_stream(cfg: EventSourceConfig, ctx: SourceContext) -> Source:
    from pipelined.config import DynamoDBStreamSource
    from pipelined.sources.streams.dynamodb import dynamodb_stream_source

    assert isinstance(cfg, DynamoDBStreamSource)
    return dynamodb_stream_source(ctx.function, cfg, ctx.checkpointer, ctx.leases, ctx.aws)


def _kinesis(cfg: EventSourceConfig, ctx: SourceContext) -> Source:
    from pipelined.config import KinesisSource
    from pipelined.sources.streams.kinesis import kinesis_source

    assert isinstance(cfg, KinesisSource)
    return kinesis_source(ctx.function, cfg, ctx.checkpointer, ctx.leases, ctx.aws)


FACTORIES: dict[str, SourceFactory] = {
    "schedule": _schedule,
    "sqs": _sqs,
    "s3": _s3,
    "mqtt": _mqtt,
    "dynamodb_stream": _dynamodb_stream,
    "kinesis": _kinesis,
}


def build_source(cfg: EventSourceConfig, ctx: SourceContext) -> Source:
    """The source object for one `events:` entry of a function."""
    factory = FACTORIES.get(cfg.type)
    if factory is None:
        raise SourceError(
            f"function {ctx.function}: event source type '{cfg.type}' is not supported by this version "
            f"of pipelined (supported: {', '.join(sorted(FACTORIES))})"
        )
    return factory(cfg, ctx)
