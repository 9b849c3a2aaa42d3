"""The one path from a caller to a handler: slot, runtime, START/END/REPORT, metrics, a typed result.

Every caller uses it: the event source runner, `pipelined invoke` and `dlq redrive`, and the HTTP and
Lambda API front doors. A caller says what kind of invocation it makes; a synchronous caller is refused
at once when the function is at its reserved concurrency (Lambda's throttle), the others wait for a slot.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelined.core.identity import new_request_id
from pipelined.core.lambda_errors import LambdaError
from pipelined.core.tracing import event_trace_id, new_trace_id, parse_xray
from pipelined.errors import PipelinedError
from pipelined.functions import report
from pipelined.functions.function import Function
from pipelined.functions.runtime import Execution, Invocation
from pipelined.observe.metrics import InvocationMetrics, Metrics
from pipelined.observe.tracing import InvocationSpan, SpanFacts, Tracer


class InvocationKind(enum.Enum):
    """How the caller waits, which decides what happens at the concurrency limit."""

    # Lambda's RequestResponse: the caller waits for the result; refused at once when throttled.
    REQUEST_RESPONSE = "RequestResponse"
    # Lambda's Event (asynchronous invocations, schedules): queued by the caller, waits for a slot.
    EVENT = "Event"
    # An event source mapping's poller: waits for a slot, counting a throttle.
    EVENT_SOURCE = "EventSource"


class UnknownFunctionError(PipelinedError):
    """No function of that name is configured."""


class ThrottledError(PipelinedError):
    """A synchronous invocation found every unit of the function's reserved concurrency taken."""


@dataclass(frozen=True, slots=True)
class InvokeResult:
    """What one invocation returned or raised, and what it cost."""

    request_id: str
    # The handler's return value (None when it raised).
    value: Any
    error: LambdaError | None
    duration_ms: float
    init_duration_ms: float | None = None

    @property
    def ok(self) -> bool:
        """True when the handler returned normally."""
        return self.error is None


class Caller:
    """One caller of one function, with its metric children resolved once (the hot path does no lookups)."""

    def __init__(
        self,
        function: Function,
        kind: InvocationKind,
        metrics: InvocationMetrics | None,
        source: str = "invoke",
    ) -> None:
        self.function = function
        self.kind = kind
        self.metrics = metrics
        # The metric label of this caller (an event source's name, "api", ...), also on its spans.
        self.source = source

    async def invoke(
        self, event: Any, request_id: str | None = None, client_context: Any = None, trace_id: str = ""
    ) -> InvokeResult:
        """Invoke the function once; raises ThrottledError only for synchronous callers.

        `trace_id` is the caller's X-Ray trace header; without one, the event's own (SQS's
        `AWSTraceHeader`) or a fresh one becomes the handler's `_X_AMZN_TRACE_ID`.
        """
        function, m = self.function, self.metrics
        if self.kind is InvocationKind.REQUEST_RESPONSE and function.at_limit:
            if m is not None:
                m.throttles.inc()
            raise ThrottledError(f"function {function.name}: reserved concurrency exhausted")
        await function.acquire(on_throttle=m.throttles.inc if m is not None else None)
        try:
            request_id = request_id or new_request_id()
            # The caller's trace header, else the event's own (SQS's AWSTraceHeader); else a fresh one,
            # or with `tracing: active` the invocation's span starts a new trace.
            trace_id = trace_id or event_trace_id(event) or ""
            result = await _run(function, event, request_id, client_context, trace_id, self)
        finally:
            function.release()
        if m is not None:
            m.invocations.inc()
            m.duration.observe(result.duration_ms / 1000)
            if result.error is not None:
                m.errors.inc()
        return result


async def _run(
    function: Function, event: Any, request_id: str, client_context: Any, trace_id: str, caller: Caller
) -> InvokeResult:
    identity, runtime = function.identity, function.runtime
    logging_on = report.logging_enabled()
    function.in_flight += 1
    span: InvocationSpan | None = None
    try:
        # A cold start happens here, before START, as Lambda's init phase does.
        execution = await runtime.acquire(request_id)
        if logging_on:
            report.log_start(identity, request_id)
        started = time.monotonic()
        if function.tracer is not None:
            span = _start_span(function.tracer, function, event, request_id, execution, trace_id, caller)
            trace_id = span.xray_header
        timeout = function.config.timeout
        invocation = Invocation(
            request_id, event, timeout, started + timeout, client_context, trace_id or new_trace_id()
        )
        reply = await runtime.run(execution, invocation)
    finally:
        function.in_flight -= 1
    duration_ms = (time.monotonic() - started) * 1000
    if span is not None:
        span.end(reply.error)
    if reply.error is not None:
        report.log_error(identity, request_id, reply.error)
    if logging_on:
        report.log_end(
            identity, request_id, duration_ms, execution.init_duration_ms, reply.max_memory_mb, reply.error
        )
    return InvokeResult(request_id, reply.value, reply.error, duration_ms, execution.init_duration_ms)


_TRIGGERS = {
    InvocationKind.REQUEST_RESPONSE: "http",
    InvocationKind.EVENT: "other",
    InvocationKind.EVENT_SOURCE: "datasource",
}


def _start_span(
    tracer: Tracer,
    function: Function,
    event: Any,
    request_id: str,
    execution: Execution,
    trace_id: str,
    caller: Caller,
) -> InvocationSpan:
    records = event.get("Records") if isinstance(event, dict) else None
    scheduled = isinstance(event, dict) and event.get("source") == "aws.events"
    trigger = "timer" if scheduled else _TRIGGERS[caller.kind]
    facts = SpanFacts(
        request_id=request_id,
        cold_start=execution.init_duration_ms is not None,
        source=caller.source,
        trigger=trigger,
        batch_size=len(records) if isinstance(records, list) else None,
    )
    return tracer.start(function.identity, parse_xray(trace_id) if trace_id else None, facts)


class InvokeService:
    """The configured functions, by name, and the callers of each."""

    def __init__(
        self, metrics: Metrics | None = None, functions: Mapping[str, Function] | None = None
    ) -> None:
        self.metrics = metrics
        self.functions: dict[str, Function] = {}
        self.replace(functions or {})

    def replace(self, functions: Mapping[str, Function]) -> None:
        """Serve this set of functions from now on (a reload); callers already made keep theirs."""
        self.functions = dict(functions)
        if self.metrics is not None:
            for function in self.functions.values():
                # ConcurrentExecutions is read from the function at scrape time, not counted per call.
                self.metrics.concurrent_executions.labels(function.name).set_function(
                    lambda f=function: f.in_flight  # type: ignore[misc]
                )

    def function(self, name: str) -> Function:
        """The function called `name`; UnknownFunctionError if there is none."""
        try:
            return self.functions[name]
        except KeyError:
            raise UnknownFunctionError(f"no function '{name}'") from None

    def caller(self, function: Function | str, source: str, kind: InvocationKind) -> Caller:
        """A caller of `function` whose metrics carry the label source=`source`."""
        fn = function if isinstance(function, Function) else self.function(function)
        metrics = self.metrics.for_invocations(fn.name, source) if self.metrics is not None else None
        return Caller(fn, kind, metrics, source)

    async def invoke(
        self,
        function: Function | str,
        event: Any,
        kind: InvocationKind = InvocationKind.REQUEST_RESPONSE,
        source: str = "invoke",
        request_id: str | None = None,
    ) -> InvokeResult:
        """Invoke once without keeping a caller (the CLI, tests)."""
        return await self.caller(function, source, kind).invoke(event, request_id)
