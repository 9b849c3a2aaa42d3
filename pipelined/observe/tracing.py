"""Invocation spans for `tracing: active`, the self-hosted form of X-Ray's `Mode=Active`.

Each invocation of an active function is an OpenTelemetry span, exported over OTLP/HTTP to
`tracing.otlp_endpoint`. Its parent is the trace context that came with the event (SQS's
`AWSTraceHeader`, an HTTP request's `X-Amzn-Trace-Id` or `traceparent`, EventBridge's `TraceHeader`);
the handler's `_X_AMZN_TRACE_ID` names the span as its Parent, so the handler's own instrumentation
(powertools Tracer, the X-Ray SDK, OpenTelemetry) continues the trace under it.

OpenTelemetry is an optional dependency (`pipelined[tracing]`): it is imported only when a function
traces actively, and configuration validation (config/tracing.py) says what to install when it is missing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pipelined.core.identity import FunctionIdentity
from pipelined.core.lambda_errors import LambdaError
from pipelined.core.tracing import TraceContext

log = logging.getLogger("pipelined.tracing")

# Spans are sent in batches at most this often (and at shutdown).
EXPORT_DELAY_MS = 500


@dataclass(frozen=True, slots=True)
class SpanFacts:
    """What an invocation span records besides its timing."""

    request_id: str
    cold_start: bool
    # The caller's metric label: the event source's name, "api", "gateway", "invoke", ...
    source: str
    # "datasource", "http", "pubsub", "timer" or "other" (OpenTelemetry's faas.trigger).
    trigger: str
    batch_size: int | None


class InvocationSpan:
    """One invocation's span, started; `end()` records the outcome."""

    def __init__(self, span: Any, context: TraceContext) -> None:
        self._span = span
        self.context = context

    @property
    def xray_header(self) -> str:
        """The handler's `_X_AMZN_TRACE_ID`: this span's trace, with the span as Parent, sampled."""
        return self.context.xray_header()

    def end(self, error: LambdaError | None) -> None:
        """Close the span: status OK, or ERROR with the function error's type and message."""
        from opentelemetry.trace import Status, StatusCode

        if error is None:
            self._span.set_attribute("pipelined.outcome", "success")
            self._span.set_status(Status(StatusCode.OK))
        else:
            self._span.set_attribute("pipelined.outcome", "error")
            self._span.set_attribute("error.type", error.error_type)
            self._span.add_event(
                "exception",
                {"exception.type": error.error_type, "exception.message": error.error_message},
            )
            self._span.set_status(Status(StatusCode.ERROR, f"{error.error_type}: {error.error_message}"))
        self._span.end()


class Tracer:
    """The daemon's tracer provider: one per daemon, shared by every actively traced function."""

    def __init__(self, otlp_endpoint: str, service_name: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON

        self.otlp_endpoint, self.service_name = otlp_endpoint, service_name
        endpoint = otlp_endpoint.rstrip("/")
        if not endpoint.endswith("/v1/traces"):
            endpoint += "/v1/traces"
        self.endpoint = endpoint
        # Active tracing records every invocation, whatever the incoming header's Sampled flag says.
        self._provider = TracerProvider(
            resource=Resource.create({"service.name": service_name}), sampler=ALWAYS_ON
        )
        self._provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint), schedule_delay_millis=EXPORT_DELAY_MS)
        )
        self._tracer = self._provider.get_tracer("pipelined")

    def start(
        self, function: FunctionIdentity, parent: TraceContext | None, facts: SpanFacts
    ) -> InvocationSpan:
        """Start the span of one invocation, a child of `parent` when the event carried one."""
        from opentelemetry import trace

        context = None
        if parent is not None and parent.parent_id is not None:
            remote = trace.SpanContext(
                trace_id=int(parent.trace_id, 16),
                span_id=int(parent.parent_id, 16),
                is_remote=True,
                trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED if parent.sampled else 0),
            )
            context = trace.set_span_in_context(trace.NonRecordingSpan(remote))
        kind = trace.SpanKind.SERVER if facts.trigger == "http" else trace.SpanKind.CONSUMER
        attributes: dict[str, Any] = {
            "faas.name": function.name,
            "faas.version": "$LATEST",
            "faas.invocation_id": facts.request_id,
            "faas.coldstart": facts.cold_start,
            "faas.trigger": facts.trigger,
            "cloud.provider": "aws",
            "cloud.region": function.region,
            "cloud.account.id": function.account,
            "cloud.resource_id": function.arn,
            "pipelined.source": facts.source,
        }
        if facts.batch_size is not None:
            attributes["pipelined.batch_size"] = facts.batch_size
        span = self._tracer.start_span(function.name, context=context, kind=kind, attributes=attributes)
        own = span.get_span_context()
        return InvocationSpan(span, TraceContext(f"{own.trace_id:032x}", f"{own.span_id:016x}", True))

    def shutdown(self) -> None:
        """Send what is buffered, then stop the exporter (a dead collector costs at most its timeout)."""
        try:
            self._provider.shutdown()
        except Exception as exc:  # the exporter's own errors must not fail the daemon's shutdown
            log.warning("tracing: could not send the last spans to %s: %s", self.endpoint, exc)
