"""Building the daemon's parts from a config: functions, and one runner per event source.

The daemon, `pipelined invoke`, the tests and the benchmarks all build their pipelines here, so a
runner is wired the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

from pipelined.aws import AwsClients
from pipelined.config import Config, DestinationConfig, EventSourceConfig, FunctionConfig
from pipelined.core.filtering import compile_patterns
from pipelined.core.identity import DEFAULT_ACCOUNT_ID
from pipelined.dispatch.destinations import Destination, make_destination
from pipelined.dispatch.runner import SourceRunner
from pipelined.functions.function import Function
from pipelined.invoke.service import InvocationKind, InvokeService
from pipelined.observe.metrics import Metrics
from pipelined.sources.base import PushSource, Source, SourceContext
from pipelined.sources.registry import build_source, event_type
from pipelined.state import StateStore
from pipelined.state.interfaces import LOCAL_LEASES

# Where failure records go when neither the source nor the function names a destination.
DEFAULT_DESTINATION = DestinationConfig(destination="sqlite")


def build_function(
    name: str,
    config: Config,
    metrics: Metrics | None = None,
    account: str | None = None,
    aws: Callable[[], AwsClients] | None = None,
) -> Function:
    """One configured function, not yet loaded (`load()` imports it or prepares its workers).

    `account` is the daemon's one account id (AwsClients.account_id; default `aws.account_id` or
    000000000000); `aws` gives the clients a function with `role` assumes it through.
    """
    return Function(
        name,
        config.functions[name],
        config.aws.region,
        metrics.for_function(name) if metrics is not None else None,
        account or config.aws.account_id or DEFAULT_ACCOUNT_ID,
        aws,
    )


def destination_for(
    function: FunctionConfig, source: EventSourceConfig, state: StateStore, aws: AwsClients
) -> Destination | None:
    """The on-failure destination of a source: None when its upstream retries (SQS's redrive policy)."""
    if event_type(source.type).upstream_retries:
        return None
    chosen = getattr(source, "on_failure", None) or function.on_failure or DEFAULT_DESTINATION
    return make_destination(chosen, state, aws)


def build_runner(
    function: Function,
    source_config: EventSourceConfig,
    config: Config,
    service: InvokeService,
    state: StateStore,
    aws: AwsClients,
    metrics: Metrics,
) -> SourceRunner:
    """The runner of one event source of `function`, not yet started."""
    assert source_config.name is not None
    source_metrics = metrics.for_source(function.name, source_config.name)
    ctx = SourceContext(
        function=function.identity,
        reserved_concurrency=function.config.reserved_concurrency,
        state=state,
        aws=aws,
        mqtt=config.mqtt,
        metrics=source_metrics,
        leases=state.cluster or LOCAL_LEASES,
    )
    return runner_for(function, build_source(source_config, ctx), source_config, service, state, aws, metrics)


def runner_for(
    function: Function,
    source: Source | PushSource,
    source_config: EventSourceConfig,
    service: InvokeService,
    state: StateStore,
    aws: AwsClients,
    metrics: Metrics,
) -> SourceRunner:
    """The runner of an already built source (tests give a stream source a recorded adapter)."""
    patterns = getattr(source_config, "filter_patterns", None)
    return SourceRunner(
        service.caller(function, source.name, InvocationKind.EVENT_SOURCE),
        source,
        metrics.for_source(function.name, source.name),
        destination_for(function.config, source_config, state, aws),
        compile_patterns(patterns) if patterns else None,
    )
