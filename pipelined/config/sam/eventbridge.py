"""SAM's `EventBridgeRule` and `CloudWatchEvent` events as pipelined's `type: eventbridge` rules.

A bus the rule names (`EventBusName`) is added to `event_buses` (docs/eventbridge.md).
"""

from __future__ import annotations

from typing import Any

from pipelined.config.sam.conversion import Conversion, truthy
from pipelined.config.types import Loc

_REASONS = {
    "RuleName": "metadata only",
    "Target": "the function is the rule's only target",
    "State": "use Enabled",
}


def _transformer(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or "InputTemplate" not in value:
        raise ValueError("expected InputTransformer with InputTemplate (and InputPathsMap)")
    return {"input_paths_map": value.get("InputPathsMap") or {}, "input_template": value["InputTemplate"]}


def _retry(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("expected RetryPolicy with MaximumRetryAttempts / MaximumEventAgeInSeconds")
    names = {
        "MaximumRetryAttempts": "maximum_retry_attempts",
        "MaximumEventAgeInSeconds": "maximum_event_age",
    }
    return {names[k]: v for k, v in value.items() if k in names}


def _dead_letter(value: Any) -> Any:
    if not isinstance(value, dict) or "Arn" not in value:
        raise ValueError(
            "expected DeadLetterConfig with Arn (SAM's Type: SQS, which creates a queue, is not supported)"
        )
    return value["Arn"]


def map_eventbridge(conv: Conversion, properties: dict[str, Any], path: Loc, loc: Loc) -> dict[str, Any]:
    """One EventBridgeRule / CloudWatchEvent event as an eventbridge source mapping."""
    target: dict[str, Any] = {}
    conv.put(target, loc, "type", "eventbridge", path)
    used = conv.take(
        properties,
        path,
        target,
        loc,
        {
            "EventBusName": "bus",
            "Pattern": "pattern",
            "Input": "input",
            "InputPath": "input_path",
            "InputTransformer": ("input_transformer", _transformer),
            "RetryPolicy": ("retry_policy", _retry),
            "DeadLetterConfig": ("dead_letter", _dead_letter),
            "Enabled": ("enabled", truthy),
        },
    )
    bus = target.get("bus")
    if isinstance(bus, str) and bus != "default":
        buses = conv.data.setdefault("event_buses", {})
        buses.setdefault(bus, {})
        conv.origins.setdefault(("event_buses", bus), (*path, "EventBusName"))
    conv.rest(properties, path, used, _REASONS)
    return target
