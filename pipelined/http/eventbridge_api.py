"""EventBridge's API (boto3's `events` client) on the API listener: PutEvents and the read operations.

EventBridge speaks the JSON 1.1 protocol: `POST /` with `X-Amz-Target: AWSEvents.<Operation>`; errors
are `{"__type", "message"}` bodies. PutEvents persists every (event, matching rule) invocation in the
asynchronous queue (and, on a bus with an archive, the event) before it answers, so an accepted event
survives `kill -9`. StartReplay queues archived events again, with `replay-name` set.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from botocore.loaders import Loader

from pipelined.config import Config
from pipelined.core.event_patterns import FilterPatternError, compile_pattern
from pipelined.core.eventbridge_events import (
    MAX_ENTRIES,
    MAX_SIZE,
    Entry,
    EntryError,
    bus_name,
    entry_size,
    envelope,
    parse_entry,
)
from pipelined.core.identity import new_request_id
from pipelined.core.tracing import parse_xray
from pipelined.dispatch.async_queue import AsyncQueue, QueueFullError
from pipelined.http.aws_errors import ApiError
from pipelined.observe.metrics import Metrics
from pipelined.sources.eventbridge import Bus, EventRouter, Rule
from pipelined.state import NewEvent, StateStore

TARGET_PREFIX = "AWSEvents."
CONTENT_TYPE = "application/x-amz-json-1.1"
LIST_LIMIT = 100
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class EventsError(ApiError):
    """An EventBridge error: JSON 1.1's `__type` and `message`, whatever the caller asks."""

    def response(self, request_id: str, json_protocol: bool = True) -> web.Response:
        """The response botocore's JSON parser turns into this error's exception class."""
        return super().response(request_id, json_protocol=True)


@functools.cache
def _model_operations() -> frozenset[str]:
    """Every operation of botocore's EventBridge model."""
    return frozenset(Loader().load_service_model("events", "service-2")["operations"])


def _validation(message: str) -> EventsError:
    return EventsError(400, "ValidationException", message)


class EventBridgeApi:
    """The EventBridge operations over the daemon's buses (from the YAML) and its async queue."""

    def __init__(
        self,
        config: Callable[[], Config],
        state: StateStore,
        queue: AsyncQueue | None,
        metrics: Metrics,
        account: Callable[[], str] | None = None,
    ) -> None:
        self._config = config
        self._account = account
        self.state = state
        self.queue = queue
        self._expired_at: dict[str, float] = {}
        self.metrics = metrics
        self._router: EventRouter | None = None
        self._router_of: Config | None = None
        self._operations: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "PutEvents": self.put_events,
            "ListEventBuses": self.list_event_buses,
            "DescribeEventBus": self.describe_event_bus,
            "ListRules": self.list_rules,
            "DescribeRule": self.describe_rule,
            "ListTargetsByRule": self.list_targets_by_rule,
            "TestEventPattern": self.test_event_pattern,
            "StartReplay": self.start_replay,
            "ListArchives": self.list_archives,
        }

    @property
    def router(self) -> EventRouter:
        """The buses and rules of the current configuration (rebuilt after a reload)."""
        config = self._config()
        if self._router is None or self._router_of is not config:
            account = self._account() if self._account is not None else None
            self._router, self._router_of = EventRouter(config, account), config
        return self._router

    def route(self, fallback: Handler) -> web.RouteDef:
        """`POST /`: EventBridge operations by `X-Amz-Target`; any other request goes to `fallback`."""

        async def handler(request: web.Request) -> web.StreamResponse:
            target = request.headers.get("X-Amz-Target", "")
            if not target.startswith(TARGET_PREFIX):
                return await fallback(request)
            return await self.dispatch(target.removeprefix(TARGET_PREFIX), request)

        return web.post("/", handler, name="EventBridge")

    async def dispatch(self, operation: str, request: web.Request) -> web.Response:
        """Run one operation on the request's JSON body."""
        method = self._operations.get(operation)
        if method is None:
            if operation not in _model_operations():
                raise EventsError(
                    400, "UnknownOperationException", f"no EventBridge operation is {operation}"
                )
            raise EventsError(
                400,
                "ValidationException",
                f"pipelined does not support {operation}: buses and rules are declared in "
                f"{self._config().source_path}, the source of truth; edit that file and reload the daemon "
                "(`systemctl reload pipelined` or `kill -HUP <pid>`)",
            )
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError as exc:
            raise EventsError(400, "SerializationException", f"the request body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise EventsError(400, "SerializationException", "the request body must be a JSON object")
        shape = await method(body)
        return web.Response(body=json.dumps(shape).encode(), content_type=CONTENT_TYPE)

    def _bus(self, given: object) -> Bus:
        name = bus_name(given if isinstance(given, str) else None)
        bus = self.router.buses.get(name)
        if bus is None:
            raise EventsError(400, "ResourceNotFoundException", f"Event bus {name} does not exist.")
        return bus

    def _rule(self, body: dict[str, Any], key: str = "Name") -> Rule:
        bus = self._bus(body.get("EventBusName"))
        name = body.get(key)
        rule = next((r for r in bus.rules if r.name == name), None)
        if rule is None:
            raise EventsError(
                400, "ResourceNotFoundException", f"Rule {name} does not exist on EventBus {bus.name}."
            )
        return rule

    # --- PutEvents -------------------------------------------------------------------------------------

    async def put_events(self, body: dict[str, Any]) -> dict[str, Any]:
        """PutEvents: each entry accepted (an EventId) or refused (ErrorCode, ErrorMessage) on its own."""
        entries = body.get("Entries")
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ENTRIES:
            count = len(entries) if isinstance(entries, list) else 0
            raise _validation(
                f"1 validation error detected: Value at 'entries' failed to satisfy constraint: "
                f"Member must have length between 1 and {MAX_ENTRIES} (got {count})"
            )
        if sum(entry_size(e) for e in entries if isinstance(e, dict)) > MAX_SIZE:
            raise _validation("Total size of the entries in the request is over the limit.")
        router = self.router
        parsed: list[Entry | EntryError] = [parse_entry(raw) for raw in entries]
        for item in parsed:
            if isinstance(item, Entry) and item.bus not in router.buses:
                raise EventsError(400, "ResourceNotFoundException", f"Event bus {item.bus} does not exist.")
        now = time.time()
        results: list[dict[str, Any]] = []
        queued: list[NewEvent] = []
        matched: list[tuple[str, str]] = []
        archived: dict[str, list[tuple[str, float, Mapping[str, Any]]]] = {}
        for item in parsed:
            if isinstance(item, EntryError):
                results.append({"ErrorCode": item.code, "ErrorMessage": item.message})
                continue
            event_id = new_request_id()
            event = envelope(item, event_id, router.account, router.region, now)
            # The entry's X-Ray TraceHeader continues its trace in each target's invocation.
            trace = item.trace_header if item.trace_header and parse_xray(item.trace_header) else None
            for delivery in router.route(item.bus, event, now):
                payload = json.dumps(delivery.payload)
                policy = delivery.rule.policy.to_json()
                queued.append(
                    NewEvent(new_request_id(), delivery.rule.function, payload, policy=policy, trace=trace)
                )
                matched.append((item.bus, delivery.rule.name))
            if router.buses[item.bus].config.archive is not None:
                archived.setdefault(item.bus, []).append((event_id, item.time or now, event))
            results.append({"EventId": event_id})
        for bus, events in archived.items():
            await self._archive(bus, events, now)
        await self._submit(queued)
        for raw, item in zip(entries, parsed, strict=True):
            if isinstance(item, Entry):
                self.metrics.eventbridge_entries.labels(item.bus, "accepted").inc()
            else:
                given = raw.get("EventBusName") if isinstance(raw, dict) else None
                bus = bus_name(given if isinstance(given, str) else None)
                self.metrics.eventbridge_entries.labels(bus, "failed").inc()
        for bus, rule in matched:
            self.metrics.eventbridge_matches.labels(bus, rule).inc()
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}

    async def _submit(self, queued: list[NewEvent]) -> None:
        if not queued:
            return
        if self.queue is None:
            raise EventsError(500, "InternalException", "the asynchronous invocation queue is not running")
        try:
            await self.queue.submit_many(queued)
        except QueueFullError as exc:
            raise EventsError(400, "LimitExceededException", str(exc)) from None

    async def _archive(
        self, bus: str, events: list[tuple[str, float, Mapping[str, Any]]], now: float
    ) -> None:
        await self.state.archive.add(bus, events)
        archive = self.router.buses[bus].config.archive
        # Expired events are forgotten at most once a minute per bus, on the way.
        if archive is not None and archive.retention > 0 and now - self._expired_at.get(bus, 0) > 60:
            self._expired_at[bus] = now
            await self.state.archive.expire(bus, now - archive.retention)

    # --- archives and replays --------------------------------------------------------------------------

    def _archived_bus(self, archive_arn: object) -> Bus:
        name = archive_arn.rpartition(":archive/")[2] if isinstance(archive_arn, str) else ""
        bus = self.router.buses.get(name)
        if bus is None or bus.config.archive is None:
            raise EventsError(400, "ResourceNotFoundException", f"Archive {name} does not exist.")
        return bus

    async def start_replay(self, body: dict[str, Any]) -> dict[str, Any]:
        """StartReplay: queue a bus's archived events in [EventStartTime, EventEndTime) again."""
        name = body.get("ReplayName")
        if not isinstance(name, str) or not name:
            raise _validation("ReplayName is required")
        bus = self._archived_bus(body.get("EventSourceArn"))
        destination = body.get("Destination") or {}
        if bus_name(destination.get("Arn")) != bus.name:
            raise _validation(f"Destination must be the archive's own event bus, {bus.arn}")
        start, end = body.get("EventStartTime"), body.get("EventEndTime")
        if not isinstance(start, int | float) or not isinstance(end, int | float) or start >= end:
            raise _validation("EventStartTime and EventEndTime are required and the start must be earlier")
        filters = set(destination.get("FilterArns") or [])
        unknown = filters - {r.arn for r in bus.rules}
        if unknown:
            raise EventsError(400, "ResourceNotFoundException", f"Rule {sorted(unknown)[0]} does not exist.")
        now = time.time()
        queued: list[NewEvent] = []
        events = await self.state.archive.between(bus.name, float(start), float(end))
        for archived in events:
            event = {**archived.event, "replay-name": name}
            for delivery in self.router.route(bus.name, event, now):
                if filters and delivery.rule.arn not in filters:
                    continue
                policy = delivery.rule.policy.to_json()
                payload = json.dumps(delivery.payload)
                queued.append(NewEvent(new_request_id(), delivery.rule.function, payload, policy=policy))
        await self._submit(queued)
        arn = f"arn:aws:events:{self.router.region}:{self.router.account}:replay/{name}"
        return {
            "ReplayArn": arn,
            "State": "COMPLETED",
            "StateReason": f"{len(events)} archived event(s) replayed as {len(queued)} invocation(s)",
            "ReplayStartTime": now,
        }

    async def list_archives(self, body: dict[str, Any]) -> dict[str, Any]:
        """ListArchives: one per bus with an `archive:`."""
        archives = []
        for bus in self.router.buses.values():
            if bus.config.archive is None:
                continue
            count, size = await self.state.archive.stats(bus.name)
            retention = bus.config.archive.retention
            archives.append(
                {
                    "ArchiveName": bus.name,
                    "EventSourceArn": bus.arn,
                    "State": "ENABLED",
                    "RetentionDays": int(retention // 86400),
                    "SizeBytes": size,
                    "EventCount": count,
                }
            )
        prefix = body.get("NamePrefix") or ""
        return {"Archives": [a for a in archives if str(a["ArchiveName"]).startswith(prefix)]}

    # --- read-only operations --------------------------------------------------------------------------

    async def list_event_buses(self, body: dict[str, Any]) -> dict[str, Any]:
        """ListEventBuses (NamePrefix, Limit, NextToken)."""
        prefix = body.get("NamePrefix") or ""
        buses = [_bus_shape(b) for b in self.router.buses.values() if b.name.startswith(prefix)]
        return _page(body, buses, "EventBuses")

    async def describe_event_bus(self, body: dict[str, Any]) -> dict[str, Any]:
        """DescribeEventBus (the default bus when no Name is given)."""
        return _bus_shape(self._bus(body.get("Name")))

    async def list_rules(self, body: dict[str, Any]) -> dict[str, Any]:
        """ListRules of one bus (NamePrefix, Limit, NextToken)."""
        bus = self._bus(body.get("EventBusName"))
        prefix = body.get("NamePrefix") or ""
        rules = [_rule_shape(r) for r in bus.rules if r.name.startswith(prefix)]
        return _page(body, rules, "Rules")

    async def describe_rule(self, body: dict[str, Any]) -> dict[str, Any]:
        """DescribeRule, as read back from the YAML file."""
        return {**_rule_shape(self._rule(body)), "CreatedBy": self.router.account}

    async def list_targets_by_rule(self, body: dict[str, Any]) -> dict[str, Any]:
        """ListTargetsByRule: a rule's one target, its function."""
        rule = self._rule(body, "Rule")
        config = rule.config
        target: dict[str, Any] = {
            "Id": rule.function,
            "Arn": rule.target_arn,
            "RetryPolicy": {
                "MaximumRetryAttempts": config.retry_policy.maximum_retry_attempts,
                "MaximumEventAgeInSeconds": int(config.retry_policy.maximum_event_age),
            },
        }
        if config.input is not None:
            target["Input"] = config.input if isinstance(config.input, str) else json.dumps(config.input)
        if config.input_path is not None:
            target["InputPath"] = config.input_path
        if config.input_transformer is not None:
            target["InputTransformer"] = {
                "InputPathsMap": config.input_transformer.input_paths_map,
                "InputTemplate": config.input_transformer.input_template,
            }
        if config.dead_letter != "sqlite":
            target["DeadLetterConfig"] = {"Arn": config.dead_letter}
        return {"Targets": [target]}

    async def test_event_pattern(self, body: dict[str, Any]) -> dict[str, Any]:
        """TestEventPattern: whether an event (JSON text) matches a pattern (JSON text)."""
        try:
            pattern = compile_pattern(body.get("EventPattern"))
        except FilterPatternError as exc:
            raise EventsError(
                400, "InvalidEventPatternException", f"Event pattern is not valid. Reason: {exc}"
            ) from None
        try:
            event = json.loads(body.get("Event") or "")
        except ValueError:
            event = None
        if not isinstance(event, dict):
            raise _validation("Parameter Event is not valid: it must be a JSON object.")
        return {"Result": pattern.matches(event)}


def _bus_shape(bus: Bus) -> dict[str, Any]:
    shape: dict[str, Any] = {"Name": bus.name, "Arn": bus.arn}
    if bus.config.description:
        shape["Description"] = bus.config.description
    return shape


def _rule_shape(rule: Rule) -> dict[str, Any]:
    config = rule.config
    shape: dict[str, Any] = {
        "Name": rule.name,
        "Arn": rule.arn,
        "EventPattern": config.pattern_json,
        "State": "ENABLED" if config.enabled else "DISABLED",
        "EventBusName": rule.bus,
    }
    if config.description:
        shape["Description"] = config.description
    return shape


def _page(body: dict[str, Any], items: list[dict[str, Any]], key: str) -> dict[str, Any]:
    # NextToken is the name of the last item of the previous page (names are unique and sorted).
    limit = body.get("Limit") or LIST_LIMIT
    if not isinstance(limit, int) or not 1 <= limit <= LIST_LIMIT:
        raise _validation(f"Limit must be between 1 and {LIST_LIMIT}")
    token = body.get("NextToken")
    remaining = [i for i in items if token is None or i["Name"] > token]
    shape: dict[str, Any] = {key: remaining[:limit]}
    if len(remaining) > limit:
        shape["NextToken"] = remaining[limit - 1]["Name"]
    return shape
