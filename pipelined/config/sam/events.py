"""A SAM function's `Events` as pipelined event sources, property by property."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pipelined.config.sam.conversion import Conversion, Rule, truthy
from pipelined.config.sam.eventbridge import map_eventbridge
from pipelined.config.sam.resources import BUCKET, TABLE
from pipelined.config.types import Loc


def _response_types(value: Any) -> bool:
    return "ReportBatchItemFailures" in (value if isinstance(value, list) else [value])


def _patterns(value: Any) -> list[Any]:
    """FilterCriteria's patterns: JSON text in the template, plain patterns in pipelined."""
    filters = value.get("Filters") if isinstance(value, dict) else None
    if not isinstance(filters, list):
        raise ValueError("expected FilterCriteria with a Filters list")
    patterns = []
    for item in filters:
        pattern = item.get("Pattern") if isinstance(item, dict) else None
        try:
            patterns.append(json.loads(pattern) if isinstance(pattern, str) else pattern)
        except json.JSONDecodeError as exc:
            raise ValueError(f"a filter Pattern is not valid JSON: {exc.msg}") from None
    return patterns


def _on_failure(value: Any) -> Any:
    target = (value.get("OnFailure") or {}).get("Destination") if isinstance(value, dict) else None
    if target is None:
        raise ValueError("expected DestinationConfig.OnFailure.Destination")
    return target


def _timestamp(value: Any) -> Any:
    # SAM gives StartingPositionTimestamp in seconds since the epoch.
    return datetime.fromtimestamp(float(value), UTC).isoformat() if isinstance(value, int | float) else value


def _input(value: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        return value  # a plain string is a valid event too


def _concurrency(value: Any) -> Any:
    return value.get("MaximumConcurrency") if isinstance(value, dict) else value


_COMMON: dict[str, Rule] = {
    "BatchSize": "batch_size",
    "MaximumBatchingWindowInSeconds": "maximum_batching_window",
    "FunctionResponseTypes": ("report_batch_item_failures", _response_types),
    "FilterCriteria": ("filter_patterns", _patterns),
    "Enabled": ("enabled", truthy),
}
_STREAM: dict[str, Rule] = {
    **_COMMON,
    "StartingPosition": "starting_position",
    "MaximumRetryAttempts": "maximum_retry_attempts",
    "MaximumRecordAgeInSeconds": "maximum_record_age",
    "BisectBatchOnFunctionError": ("bisect_batch_on_function_error", truthy),
    "ParallelizationFactor": "parallelization_factor",
    "DestinationConfig": ("on_failure", _on_failure),
}
_RULES: dict[str, dict[str, Rule]] = {
    "SQS": {**_COMMON, "ScalingConfig": ("maximum_concurrency", _concurrency)},
    "DynamoDB": _STREAM,
    "Kinesis": {**_STREAM, "StartingPositionTimestamp": ("starting_position_timestamp", _timestamp)},
    "Schedule": {"Schedule": "expression", "Input": ("input", _input), "Enabled": ("enabled", truthy)},
    "ScheduleV2": {
        "ScheduleExpression": "expression",
        "ScheduleExpressionTimezone": "timezone",
        "Input": ("input", _input),
    },
    "Api": {"Path": "path", "Method": "method"},
    "HttpApi": {"Path": "path", "Method": "method", "PayloadFormatVersion": "payload_format_version"},
    "S3": {},
}
_TYPES = {
    "SQS": "sqs",
    "DynamoDB": "dynamodb_stream",
    "Kinesis": "kinesis",
    "Schedule": "schedule",
    "ScheduleV2": "schedule",
    "Api": "api",
    "HttpApi": "http_api",
    "S3": "s3",
}
_REASONS = {
    "RestApiId": "all routes are served by pipelined's one gateway",
    "ApiId": "all routes are served by pipelined's one gateway",
    "Auth": "the gateway does not authorize requests",
    "Name": "metadata only",
    "Description": "metadata only",
    "KmsKeyArn": "not needed locally",
    "MetricsConfig": "pipelined's metrics are always on (/metrics)",
    "TumblingWindowInSeconds": "pipelined has no tumbling windows",
    "DeadLetterConfig": "failed firings go to the function's on_failure (or the local store)",
}


def map_events(conv: Conversion, function_id: str, name: str, events: Any, path: Loc) -> list[dict[str, Any]]:
    """The pipelined events of one function (unsupported ones listed, not mapped)."""
    if events is None:
        return []
    if not isinstance(events, dict):
        conv.problem(path, "expected a mapping of event names to events")
        return []
    mapped: list[dict[str, Any]] = []
    for event_name, event in events.items():
        at: Loc = (*path, event_name)
        loc: Loc = ("functions", name, "events", len(mapped))
        kind = event.get("Type") if isinstance(event, dict) else None
        properties = event.get("Properties") or {} if isinstance(event, dict) else {}
        if not isinstance(properties, dict):
            conv.problem((*at, "Properties"), "expected a mapping")
            continue
        props_path: Loc = (*at, "Properties")
        if kind in ("EventBridgeRule", "CloudWatchEvent"):
            target = map_eventbridge(conv, properties, props_path, loc)
        elif kind in _TYPES:
            target = {}
            conv.put(target, loc, "type", _TYPES[kind], (*at, "Type"), note=f"Type: {kind}")
            extra = _SPECIAL.get(kind)
            used = extra(conv, properties, props_path, target, loc) if extra is not None else set()
            used |= conv.take(properties, props_path, target, loc, _RULES[kind])
            conv.rest(properties, props_path, used, _REASONS)
        else:
            conv.skip((*at, "Type"), f"pipelined has no {kind} event source")
            continue
        conv.put(target, loc, "name", event_name, at, note=f"Events.{event_name}")
        conv.origins[loc] = at
        mapped.append({"type": target.pop("type"), "name": target.pop("name"), **target})
    return mapped


def _getatt(value: Any) -> tuple[str, str] | None:
    if isinstance(value, dict) and len(value) == 1 and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        parts = target.split(".", 1) if isinstance(target, str) else target
        if isinstance(parts, list) and len(parts) == 2:
            return str(parts[0]), str(parts[1])
    return None


def _sqs(conv: Conversion, props: dict[str, Any], path: Loc, target: dict[str, Any], loc: Loc) -> set[str]:
    if "Queue" not in props:
        conv.problem(path, "Queue: required property is missing")
    else:
        queue = conv.resolve(props["Queue"], (*path, "Queue"))
        conv.put(target, loc, "queue", queue, (*path, "Queue"), note="Queue")
    return {"Queue"}


def _stream(key: str) -> Callable[[Conversion, dict[str, Any], Loc, dict[str, Any], Loc], set[str]]:
    def mapper(
        conv: Conversion, props: dict[str, Any], path: Loc, target: dict[str, Any], loc: Loc
    ) -> set[str]:
        if "Stream" not in props:
            conv.problem(path, "Stream: required property is missing")
            return {"Stream"}
        at = (*path, "Stream")
        getatt = _getatt(props["Stream"])
        table = getatt[0] if getatt and getatt[1] == "StreamArn" else None
        if (
            key == "stream_arn"
            and table
            and conv.resources.has(table)
            and conv.resources.type(table) == TABLE
        ):
            # The stream's label is only known once the table exists: read the table's latest stream.
            conv.put(
                target, loc, "table", conv.resources.name(table), at, note=f"Stream (the stream of {table})"
            )
        else:
            conv.put(target, loc, key, conv.resolve(props["Stream"], at), at, note="Stream")
        return {"Stream"}

    return mapper


def _s3(conv: Conversion, props: dict[str, Any], path: Loc, target: dict[str, Any], loc: Loc) -> set[str]:
    raw = props.get("Bucket")
    ref = raw.get("Ref") if isinstance(raw, dict) and len(raw) == 1 else None
    if not (isinstance(ref, str) and conv.resources.has(ref) and conv.resources.type(ref) == BUCKET):
        conv.problem((*path, "Bucket"), "must be a !Ref to an AWS::S3::Bucket in this template (as in SAM)")
        return {"Bucket", "Events", "Filter"}
    bucket = conv.resources.name(ref)
    conv.put(target, loc, "bucket", bucket, (*path, "Bucket"), note=f"Bucket ({ref})")
    events = conv.resolve(props.get("Events", "s3:ObjectCreated:*"), (*path, "Events"))
    conv.put(
        target,
        loc,
        "events",
        events if isinstance(events, list) else [events],
        (*path, "Events"),
        note="Events",
    )
    rules = conv.resolve(props.get("Filter"), (*path, "Filter"))
    for rule in ((rules or {}).get("S3Key") or {}).get("Rules") or [] if isinstance(rules, dict) else []:
        kind = str(rule.get("Name", "")).lower() if isinstance(rule, dict) else ""
        if kind in ("prefix", "suffix"):
            conv.put(target, loc, kind, rule.get("Value", ""), (*path, "Filter"), note=f"Filter {kind}")
        else:
            conv.problem((*path, "Filter"), f"filter rules are named prefix or suffix, got {rule!r}")
    queue = bucket.replace(".", "-") + "-notifications"
    conv.put(
        target,
        loc,
        "via",
        {"sqs": queue},
        (*path, "Bucket"),
        note="notifications via this queue (dev mode creates it; else pipelined s3 setup-notifications)",
    )
    return {"Bucket", "Events", "Filter"}


def _schedule_state(
    conv: Conversion, props: dict[str, Any], path: Loc, target: dict[str, Any], loc: Loc
) -> set[str]:
    used = {"State"}
    if "State" in props:
        state = conv.resolve(props["State"], (*path, "State"))
        conv.put(target, loc, "enabled", state != "DISABLED", (*path, "State"), note="State")
    retry = conv.resolve(props.get("RetryPolicy"), (*path, "RetryPolicy"))
    if isinstance(retry, dict):
        used.add("RetryPolicy")
        for prop, key in (
            ("MaximumRetryAttempts", "maximum_retry_attempts"),
            ("MaximumEventAgeInSeconds", "maximum_event_age"),
        ):
            if prop in retry:
                conv.put(
                    target, loc, key, retry[prop], (*path, "RetryPolicy", prop), note=f"RetryPolicy.{prop}"
                )
    window = conv.resolve(props.get("FlexibleTimeWindow"), (*path, "FlexibleTimeWindow"))
    if isinstance(window, dict) and window.get("Mode") == "OFF":
        used.add("FlexibleTimeWindow")
    return used


def _http_api(
    conv: Conversion, props: dict[str, Any], path: Loc, target: dict[str, Any], loc: Loc
) -> set[str]:
    if "Path" not in props:
        # No Path: the API's $default route, which every request reaches.
        conv.put(target, loc, "path", "/{proxy+}", path, note="no Path: the $default route")
    return set()


_SPECIAL: dict[str, Callable[[Conversion, dict[str, Any], Loc, dict[str, Any], Loc], set[str]]] = {
    "SQS": _sqs,
    "DynamoDB": _stream("stream_arn"),
    "Kinesis": _stream("stream"),
    "S3": _s3,
    "Schedule": _schedule_state,
    "ScheduleV2": _schedule_state,
    "HttpApi": _http_api,
}
