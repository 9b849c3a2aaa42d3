"""Event sources, one module each, all behind the `Source` protocol in `base`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipelined.aws import AwsClients
from pipelined.config import Config, EventSourceConfig
from pipelined.errors import SourceError
from pipelined.sources.base import Source
from pipelined.state import StateStore


@dataclass(frozen=True, slots=True)
class SourceContext:
    """What a source may need from the daemon: the config, the state store, AWS clients."""

    function: str
    config: Config
    state: StateStore
    aws: AwsClients


SourceFactory = Callable[[EventSourceConfig, SourceContext], Source]


def _schedule(cfg: EventSourceConfig, ctx: SourceContext) -> Source:
    from pipelined.config import ScheduleSource
    from pipelined.sources.schedule import ScheduleEventSource

    assert isinstance(cfg, ScheduleSource)
    return ScheduleEventSource(ctx.function, cfg, ctx.state, ctx.config.aws.region)


FACTORIES: dict[str, SourceFactory] = {"schedule": _schedule}


def build_source(cfg: EventSourceConfig, ctx: SourceContext) -> Source:
    """The source object for one `events:` entry of a function."""
    factory = FACTORIES.get(cfg.type)
    if factory is None:
        raise SourceError(
            f"function {ctx.function}: event source type '{cfg.type}' is not supported by this version "
            f"of pipelined (supported: {', '.join(sorted(FACTORIES))})"
        )
    return factory(cfg, ctx)
