"""EventBridge rules as a routing table: which functions an event goes to, and with what input.

Nothing here is polled. PutEvents (pipelined/http/eventbridge_api.py) asks `EventRouter.route()` for the
deliveries of each accepted event and queues each one as an asynchronous invocation, with the rule's
retry policy and dead letter (pipelined/dispatch/async_queue.py). The table is rebuilt from the config on
every reload.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelined.config import Config, EventBridgeSource, EventBusConfig, EventSourceConfig, FunctionConfig
from pipelined.core.event_input import (
    Path,
    RuleContext,
    Transformer,
    compile_path,
    compile_transformer,
    resolve,
)
from pipelined.core.event_patterns import EventPattern, compile_pattern
from pipelined.core.eventbridge_events import DEFAULT_BUS, RulePolicy, bus_arn, bus_rule_arn
from pipelined.core.identity import DEFAULT_ACCOUNT_ID, function_arn
from pipelined.core.timestamps import iso_seconds
from pipelined.sources.resources import DevResources, queue_name


@dataclass(frozen=True, slots=True)
class Rule:
    """One `type: eventbridge` event of a function, compiled."""

    name: str
    bus: str
    arn: str
    function: str
    target_arn: str
    config: EventBridgeSource
    pattern: EventPattern
    policy: RulePolicy
    input_path: Path | None
    transformer: Transformer | None

    def target_input(self, event: Mapping[str, Any], now: float) -> Any:
        """What the function receives for `event`: the event, or the rule's input / path / transform."""
        if self.transformer is not None:
            context = RuleContext(self.name, self.arn, iso_seconds(now))
            return self.transformer.apply(event, context)
        if self.input_path is not None:
            return resolve(event, self.input_path)
        given = self.config.input
        if given is not None:
            return json.loads(given) if isinstance(given, str) else given
        return event


@dataclass(frozen=True, slots=True)
class Delivery:
    """One asynchronous invocation an event causes: the function, its payload and the rule's policy."""

    rule: Rule
    payload: Any


@dataclass(frozen=True, slots=True)
class Bus:
    """An event bus and its rules."""

    name: str
    arn: str
    config: EventBusConfig
    rules: tuple[Rule, ...]


def rule_name(function: str, event: str) -> str:
    """The rule an event of a function becomes (SAM names it after both, too)."""
    return f"{function}-{event}"


class EventRouter:
    """The buses and rules of one configuration."""

    def __init__(self, config: Config, account: str | None = None) -> None:
        self.region = config.aws.region
        # The daemon's one account id (AwsClients.account_id), as in every other ARN.
        self.account = account or config.aws.account_id or DEFAULT_ACCOUNT_ID
        rules: dict[str, list[Rule]] = {DEFAULT_BUS: []}
        for name in config.event_buses:
            rules.setdefault(name, [])
        for function_name, function in config.functions.items():
            for source in function.events:
                if isinstance(source, EventBridgeSource):
                    rules[source.bus].append(self._rule(function_name, source))
        declared = dict(config.event_buses)
        self.buses: dict[str, Bus] = {
            name: Bus(
                name,
                bus_arn(self.region, self.account, name),
                declared.get(name, EventBusConfig()),
                tuple(sorted(found, key=lambda r: r.name)),
            )
            for name, found in sorted(rules.items())
        }

    def _rule(self, function: str, source: EventBridgeSource) -> Rule:
        assert source.name is not None
        name = rule_name(function, source.name)
        arn = bus_rule_arn(self.region, self.account, source.bus, name)
        retry = source.retry_policy
        policy = RulePolicy(
            rule_name=name,
            rule_arn=arn,
            maximum_retry_attempts=retry.maximum_retry_attempts,
            maximum_event_age=retry.maximum_event_age,
            backoff_base=retry.backoff_base,
            backoff_max=retry.backoff_max,
            dead_letter=source.dead_letter,
        )
        transformer = source.input_transformer
        return Rule(
            name=name,
            bus=source.bus,
            arn=arn,
            function=function,
            target_arn=function_arn(self.region, self.account, function),
            config=source,
            pattern=compile_pattern(source.pattern),
            policy=policy,
            input_path=compile_path(source.input_path) if source.input_path is not None else None,
            transformer=(
                compile_transformer(transformer.input_paths_map, transformer.input_template)
                if transformer is not None
                else None
            ),
        )

    def route(self, bus: str, event: Mapping[str, Any], now: float) -> list[Delivery]:
        """The deliveries of one event on `bus` (which must exist): one per matching rule."""
        return [
            Delivery(rule, rule.target_input(event, now))
            for rule in self.buses[bus].rules
            if rule.config.enabled and rule.pattern.matches(event)
        ]

    def rule(self, bus: str, name: str) -> Rule | None:
        """A rule of a bus by name."""
        found = self.buses.get(bus)
        return next((r for r in found.rules if r.name == name), None) if found is not None else None


def dev_resources(config: EventSourceConfig, function: FunctionConfig, found: DevResources) -> None:
    """Dev mode creates a rule's SQS dead-letter queue."""
    assert isinstance(config, EventBridgeSource)
    if config.dead_letter != "sqlite":
        found.queues.setdefault(queue_name(config.dead_letter), None)
