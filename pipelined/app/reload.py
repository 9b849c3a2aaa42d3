"""What a reload must do, decided from the old and new config alone: no I/O, so it is tested directly."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipelined.config import Config, EventSourceConfig, FunctionConfig
from pipelined.sources.registry import event_type

# (function name, source name): how a running event source is known.
RunnerKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class RunnerSpec:
    """What a running source was built from, to tell on reload whether it changed."""

    # The function without its `events`: a sibling source changing does not restart this one.
    function: FunctionConfig
    source: EventSourceConfig


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """The functions to (re)build and the runners to stop and start, in that order."""

    # Functions to build and load anew: new ones, changed ones, all of them when connections changed.
    build: frozenset[str]
    # Functions to close once their runners stopped: removed ones and those being rebuilt.
    retire: frozenset[str]
    # Runners to stop: removed, changed, or of a rebuilt function.
    stop: tuple[RunnerKey, ...]
    # Runners to start, with what they are built from.
    start: tuple[tuple[RunnerKey, RunnerSpec], ...]
    # The `aws:` section changed: the AWS clients are replaced.
    aws_changed: bool


def wanted_runners(config: Config) -> dict[RunnerKey, RunnerSpec]:
    """Every enabled event source with a runner (HTTP triggers and bus rules are routed to, not run)."""
    wanted: dict[RunnerKey, RunnerSpec] = {}
    for name, function in config.functions.items():
        for source in function.events:
            if source.enabled and event_type(source.type).has_runner:
                assert source.name is not None
                wanted[(name, source.name)] = RunnerSpec(_without_events(function), source)
    return wanted


def _without_events(function: FunctionConfig) -> FunctionConfig:
    return function.model_copy(update={"events": []})


def plan_reload(
    old: Config | None,
    new: Config,
    loaded: Mapping[str, FunctionConfig],
    running: Mapping[RunnerKey, RunnerSpec],
) -> ReloadPlan:
    """The plan that takes `loaded` functions and `running` runners (under `old`) to `new`."""
    wanted = wanted_runners(new)
    # New AWS or MQTT connection settings reach every source: restart them all.
    connections_changed = old is not None and (new.aws, new.mqtt) != (old.aws, old.mqtt)
    build = frozenset(
        name
        for name, fn in new.functions.items()
        if connections_changed or name not in loaded or _without_events(loaded[name]) != _without_events(fn)
    )
    stop = tuple(
        key for key, spec in running.items() if key not in wanted or wanted[key] != spec or key[0] in build
    )
    start = tuple((key, spec) for key, spec in wanted.items() if key not in running or key in stop)
    retire = frozenset(name for name in loaded if name not in new.functions or name in build)
    return ReloadPlan(build, retire, stop, start, old is not None and new.aws != old.aws)
