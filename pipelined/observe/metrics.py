"""Every Prometheus metric pipelined exports, defined in one place (Lambda's names, Prometheus style)."""

from __future__ import annotations

import platform
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from pipelined import __version__

EVENT_OUTCOMES = (
    "polled",
    "filtered",
    "invoked",
    "succeeded",
    "failed",
    "retried",
    "dead_lettered",
    "dropped",
    "deleted",
    "duplicate",
)


class Metrics:
    """The daemon's metric families in their own registry (so tests and reloads never collide)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ("function", "source")
        r = self.registry
        self.invocations = Counter(
            "pipelined_invocations",
            "Handler invocations, function errors included, throttles not.",
            labels,
            registry=r,
        )
        self.errors = Counter(
            "pipelined_errors",
            "Invocations that raised, timed out or returned a failure.",
            labels,
            registry=r,
        )
        self.throttles = Counter(
            "pipelined_throttles",
            "Invocations that had to wait for reserved concurrency.",
            labels,
            registry=r,
        )
        self.duration = Histogram(
            "pipelined_duration_seconds",
            "Time spent in handler code per invocation.",
            labels,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
            registry=r,
        )
        self.concurrent_executions = Gauge(
            "pipelined_concurrent_executions", "Invocations in flight.", ("function",), registry=r
        )
        self.iterator_age = Gauge(
            "pipelined_iterator_age_seconds",
            "Now minus the arrival time of the last record of the latest batch.",
            labels,
            registry=r,
        )
        self.events = Counter(
            "pipelined_events", "Records by what happened to them.", (*labels, "outcome"), registry=r
        )
        self.dead_letter_errors = Counter(
            "pipelined_dead_letter_errors",
            "Failure records that could not be delivered to the on-failure destination.",
            labels,
            registry=r,
        )
        self.source_errors = Counter(
            "pipelined_source_errors",
            "Errors talking to an event source (polling or settling).",
            labels,
            registry=r,
        )
        self.source_up = Gauge(
            "pipelined_source_up", "1 while the event source is started and healthy.", labels, registry=r
        )
        # Process isolation (pipelined/functions/process/): worker processes per function.
        self.cold_starts = Counter(
            "pipelined_cold_starts",
            "Worker processes initialised (handler imported), provisioned ones included.",
            ("function",),
            registry=r,
        )
        self.init_duration = Histogram(
            "pipelined_init_duration_seconds",
            "Time from forking a worker to its handler being imported (REPORT's Init Duration).",
            ("function",),
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.worker_restarts = Counter(
            "pipelined_worker_restarts",
            "Worker processes stopped other than by shutdown/reload (timeout, crash, oom, idle, init_error).",
            ("function", "cause"),
            registry=r,
        )
        self.workers = Gauge("pipelined_workers", "Live worker processes.", ("function",), registry=r)
        # The gateway (pipelined/http/gateway.py): one series per route and kind of API.
        self.http_requests = Counter(
            "pipelined_http_requests",
            "Gateway requests by route and status class (2xx, 4xx, 5xx).",
            ("api", "route", "status_class"),
            registry=r,
        )
        self.http_duration = Histogram(
            "pipelined_http_request_duration_seconds",
            "Gateway request latency, from the request read to the response written.",
            ("api", "route"),
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.http_errors = Counter(
            "pipelined_http_errors",
            "Gateway errors by route and kind (function_error, malformed, throttled, timeout, ...).",
            ("api", "route", "kind"),
            registry=r,
        )
        # Asynchronous invocations (the Lambda API's `Event` type): Lambda's AsyncEvents* metrics.
        self.async_events_received = Counter(
            "pipelined_async_events_received",
            "Events accepted for asynchronous invocation.",
            ("function",),
            registry=r,
        )
        self.async_event_age = Histogram(
            "pipelined_async_event_age_seconds",
            "Time from accepting an event to each of its invocations.",
            ("function",),
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 900, 3600, 21600),
            registry=r,
        )
        self.async_events_dropped = Counter(
            "pipelined_async_events_dropped",
            "Events that never ran successfully (sent to the on-failure destination first).",
            ("function", "reason"),
            registry=r,
        )
        self.async_queue_depth = Gauge(
            "pipelined_async_queue_depth",
            "Events queued for asynchronous invocation.",
            ("function",),
            registry=r,
        )
        self.dead_letters = Gauge(
            "pipelined_dead_letters",
            "Events parked in the local dead-letter store (`pipelined dlq list`), read at each scrape.",
            ("function",),
            registry=r,
        )
        self.destination_delivery_failures = Counter(
            "pipelined_destination_delivery_failures",
            "Asynchronous invocation records that could not be sent to their destination.",
            ("function", "destination"),
            registry=r,
        )
        self.api_requests_denied = Counter(
            "pipelined_api_requests_denied",
            "Lambda API requests refused: a missing or wrong signature, or no permission.",
            ("operation", "reason"),
            registry=r,
        )
        # EventBridge (PutEvents): its PutEvents*Entries and MatchedEvents metrics.
        self.eventbridge_entries = Counter(
            "pipelined_eventbridge_entries",
            "PutEvents entries by bus and result (accepted or failed).",
            ("bus", "result"),
            registry=r,
        )
        self.eventbridge_matches = Counter(
            "pipelined_eventbridge_matched_events",
            "Events a rule matched (each is queued as one asynchronous invocation).",
            ("bus", "rule"),
            registry=r,
        )
        self.build_info = Info("pipelined_build", "pipelined version and Python runtime.", registry=r)
        self.build_info.info({"version": __version__, "python": platform.python_version()})

    def for_source(self, function: str, source: str) -> SourceMetrics:
        """Label children for one source, resolved once so the hot path does no label lookups."""
        return SourceMetrics(
            invocations=self.invocations.labels(function, source),
            errors=self.errors.labels(function, source),
            throttles=self.throttles.labels(function, source),
            duration=self.duration.labels(function, source),
            concurrent=self.concurrent_executions.labels(function),
            iterator_age=self.iterator_age.labels(function, source),
            dead_letter_errors=self.dead_letter_errors.labels(function, source),
            source_errors=self.source_errors.labels(function, source),
            source_up=self.source_up.labels(function, source),
            events={o: self.events.labels(function, source, o) for o in EVENT_OUTCOMES},
        )

    def for_invocations(self, function: str, source: str) -> InvocationMetrics:
        """Label children for one caller of a function (the invoke service records these)."""
        return InvocationMetrics(
            invocations=self.invocations.labels(function, source),
            errors=self.errors.labels(function, source),
            throttles=self.throttles.labels(function, source),
            duration=self.duration.labels(function, source),
        )

    def for_function(self, function: str) -> FunctionMetrics:
        """Label children for one function's worker pool."""
        return FunctionMetrics(
            function=function,
            cold_starts=self.cold_starts.labels(function),
            init_duration=self.init_duration.labels(function),
            worker_restarts=self.worker_restarts,
            workers=self.workers.labels(function),
        )


@dataclass(frozen=True, slots=True)
class InvocationMetrics:
    """The metric children the invoke service records for one caller of one function."""

    invocations: Counter
    errors: Counter
    throttles: Counter
    duration: Histogram


@dataclass(frozen=True, slots=True)
class FunctionMetrics:
    """The metric children of one function's worker pool (process isolation)."""

    function: str
    cold_starts: Counter
    init_duration: Histogram
    worker_restarts: Counter  # the family: causes are labelled as they happen
    workers: Gauge

    def restarted(self, cause: str) -> None:
        """Count one worker stopped for `cause`."""
        self.worker_restarts.labels(self.function, cause).inc()


@dataclass(frozen=True, slots=True)
class SourceMetrics:
    """The metric children of one (function, source) pair."""

    invocations: Counter
    errors: Counter
    throttles: Counter
    duration: Histogram
    concurrent: Gauge
    iterator_age: Gauge
    dead_letter_errors: Counter
    source_errors: Counter
    source_up: Gauge
    events: dict[str, Counter]

    def count(self, outcome: str, n: int = 1) -> None:
        """Add n records to the `outcome` count."""
        if n:
            self.events[outcome].inc(n)
