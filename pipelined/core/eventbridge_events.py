"""EventBridge's shapes with no I/O: PutEvents entries checked one by one, and the event envelope.

The envelope is exactly that of AWS's sample events (`version`, `id`, `detail-type`, `source`, `account`,
`time`, `region`, `resources`, `detail`), so powertools' `EventBridgeEvent` and `EventBridgeModel` read it.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pipelined.core.timestamps import iso_seconds

DEFAULT_BUS: Final = "default"
# PutEvents' quotas: entries per call, and bytes per entry and per call (as EventBridge counts them).
MAX_ENTRIES: Final = 10
MAX_SIZE: Final = 256 * 1024
MAX_TRACE_HEADER: Final = 500


def bus_arn(region: str, account: str, bus: str) -> str:
    """arn:aws:events:REGION:ACCOUNT:event-bus/NAME."""
    return f"arn:aws:events:{region}:{account}:event-bus/{bus}"


def bus_rule_arn(region: str, account: str, bus: str, rule: str) -> str:
    """A rule's ARN; rules of a custom bus carry the bus name, as on AWS."""
    where = rule if bus == DEFAULT_BUS else f"{bus}/{rule}"
    return f"arn:aws:events:{region}:{account}:rule/{where}"


def bus_name(given: str | None) -> str:
    """The bus an `EventBusName` names (a name or a bus ARN); `default` when none is given."""
    if not given:
        return DEFAULT_BUS
    if given.startswith("arn:") and ":event-bus/" in given:
        return given.rpartition(":event-bus/")[2]
    return given


@dataclass(frozen=True, slots=True)
class Entry:
    """One valid PutEvents entry."""

    source: str
    detail_type: str
    detail: Mapping[str, Any]
    resources: tuple[str, ...]
    # Epoch seconds, or None: the time the event is accepted.
    time: float | None
    bus: str
    trace_header: str | None = None


@dataclass(frozen=True, slots=True)
class EntryError:
    """Why one PutEvents entry was refused: EventBridge's ErrorCode and ErrorMessage."""

    code: str
    message: str


def _invalid(parameter: str, reason: str) -> EntryError:
    return EntryError("InvalidArgument", f"Parameter {parameter} is not valid. Reason: {reason}")


def entry_size(entry: Mapping[str, Any]) -> int:
    """An entry's size as EventBridge counts it: UTF-8 bytes of its strings, plus 14 for a Time."""
    size = 14 if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        value = entry.get(name)
        if isinstance(value, str):
            size += len(value.encode())
    for resource in entry.get("Resources") or []:
        if isinstance(resource, str):
            size += len(resource.encode())
    return size


def parse_entry(raw: object) -> Entry | EntryError:
    """Check one entry of a PutEvents request (as botocore serialises it)."""
    if not isinstance(raw, Mapping):
        return _invalid("Entry", "an entry must be an object.")
    for name in ("Source", "DetailType", "Detail"):
        value = raw.get(name)
        if value is None or value == "":
            return _invalid(name, f"{name} is a required argument.")
        if not isinstance(value, str):
            return _invalid(name, f"{name} must be a string.")
    try:
        detail = json.loads(raw["Detail"])
    except ValueError:
        return EntryError("MalformedDetail", "Detail is malformed.")
    if not isinstance(detail, dict):
        return EntryError("MalformedDetail", "Detail is malformed: it must be a JSON object.")
    resources = raw.get("Resources") or []
    if not isinstance(resources, list) or not all(isinstance(r, str) for r in resources):
        return _invalid("Resources", "Resources must be a list of strings.")
    when = raw.get("Time")
    if when is not None and (isinstance(when, bool) or not isinstance(when, int | float | str)):
        return _invalid("Time", "Time must be a timestamp.")
    seconds = _seconds(when) if when is not None else None
    if when is not None and seconds is None:
        return _invalid("Time", f"{when!r} is not a timestamp.")
    trace = raw.get("TraceHeader")
    if trace is not None and (not isinstance(trace, str) or len(trace) > MAX_TRACE_HEADER):
        return _invalid("TraceHeader", f"TraceHeader must be a string of at most {MAX_TRACE_HEADER}.")
    bus = raw.get("EventBusName")
    if bus is not None and not isinstance(bus, str):
        return _invalid("EventBusName", "EventBusName must be a string.")
    if entry_size(raw) > MAX_SIZE:
        return EntryError("InvalidArgument", f"Entry is larger than {MAX_SIZE} bytes.")
    return Entry(
        source=raw["Source"],
        detail_type=raw["DetailType"],
        detail=detail,
        resources=tuple(resources),
        time=seconds,
        bus=bus_name(bus),
        trace_header=trace,
    )


def _seconds(value: int | float | str) -> float | None:
    # botocore sends epoch seconds; other clients may send ISO-8601 text.
    if isinstance(value, int | float):
        return float(value)
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


def envelope(
    entry: Entry, event_id: str, account: str, region: str, now: float, replay_name: str | None = None
) -> dict[str, Any]:
    """The event a rule's target receives (`replay-name` only when an archive replays it)."""
    event: dict[str, Any] = {
        "version": "0",
        "id": event_id,
        "detail-type": entry.detail_type,
        "source": entry.source,
        "account": account,
        "time": iso_seconds(entry.time if entry.time is not None else now),
        "region": region,
        "resources": list(entry.resources),
        "detail": entry.detail,
    }
    if replay_name is not None:
        event["replay-name"] = replay_name
    return event


def dead_letter_attributes(
    rule_arn: str, target_arn: str, condition: str, attempts: int, error: Mapping[str, Any] | None
) -> dict[str, str]:
    """The message attributes EventBridge puts on an event it sends to a rule's dead-letter queue."""
    return {
        "RULE_ARN": rule_arn,
        "TARGET_ARN": target_arn,
        "ERROR_CODE": str(error.get("errorType", "Unhandled")) if error else condition,
        "ERROR_MESSAGE": str(error.get("errorMessage", "")) if error else condition,
        "EXHAUSTED_RETRY_CONDITION": condition,
        "RETRY_ATTEMPTS": str(max(attempts - 1, 0)),
    }


@dataclass(frozen=True, slots=True)
class RulePolicy:
    """How the asynchronous invocation for one (event, rule) is retried, and where it goes if it fails."""

    rule_name: str
    rule_arn: str
    maximum_retry_attempts: int
    maximum_event_age: float
    backoff_base: float
    backoff_max: float
    # "sqlite", or an SQS queue URL or ARN.
    dead_letter: str

    def to_json(self) -> dict[str, Any]:
        """The policy as stored with the queued invocation."""
        return {
            "rule": self.rule_name,
            "rule_arn": self.rule_arn,
            "maximum_retry_attempts": self.maximum_retry_attempts,
            "maximum_event_age": self.maximum_event_age,
            "backoff_base": self.backoff_base,
            "backoff_max": self.backoff_max,
            "dead_letter": self.dead_letter,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RulePolicy:
        """The policy stored by to_json()."""
        return cls(
            rule_name=str(data["rule"]),
            rule_arn=str(data["rule_arn"]),
            maximum_retry_attempts=int(data["maximum_retry_attempts"]),
            maximum_event_age=float(data["maximum_event_age"]),
            backoff_base=float(data["backoff_base"]),
            backoff_max=float(data["backoff_max"]),
            dead_letter=str(data["dead_letter"]),
        )
