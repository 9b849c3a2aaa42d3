"""`tracing:` — where `tracing: active` functions send their invocation spans (OTLP/HTTP)."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Literal

from pipelined.config.functions import FunctionConfig
from pipelined.config.types import ConfigModel, FieldValueError

# Per function, as SAM's `Tracing`: active makes each invocation a span; pass_through only hands the
# incoming trace header to the handler (docs/operations.md, "Tracing").
TracingMode = Literal["active", "pass_through"]


class TracingConfig(ConfigModel):
    """The OpenTelemetry exporter of the daemon's invocation spans."""

    # OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (spans go to its /v1/traces).
    otlp_endpoint: str | None = None
    service_name: str = "pipelined"


def tracing_installed() -> bool:
    """Whether OpenTelemetry's SDK and OTLP/HTTP exporter can be imported (`pipelined[tracing]`)."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")
    )


def check_tracing(tracing: TracingConfig, functions: Mapping[str, FunctionConfig], installed: bool) -> None:
    """FieldValueError for the first `tracing: active` function that cannot export its spans."""
    for name, function in functions.items():
        if function.tracing != "active":
            continue
        if tracing.otlp_endpoint is None:
            raise FieldValueError(
                ("functions", name, "tracing"),
                "active tracing needs tracing.otlp_endpoint (an OTLP/HTTP URL)",
            )
        if not installed:
            raise FieldValueError(
                ("functions", name, "tracing"),
                "active tracing needs OpenTelemetry: pip install 'pipelined[tracing]'",
            )
