"""X-Ray trace headers: the `_X_AMZN_TRACE_ID` every invocation gets, from its event or fresh.

Lambda sets `_X_AMZN_TRACE_ID` for every invocation; tracing libraries (the X-Ray SDK, powertools
`Tracer`) read it and complain on every call when it is missing. An event that carries a trace header
(SQS's `AWSTraceHeader` system attribute, an HTTP request's `X-Amzn-Trace-Id` or `traceparent`)
continues that trace; any other gets a new, unsampled one. `TraceContext` is the same header in
OpenTelemetry's terms, for the invocation spans of `tracing: active` (observe/tracing.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

VARIABLE = "_X_AMZN_TRACE_ID"


def new_trace_id() -> str:
    """A fresh X-Ray trace header: `Root=1-{epoch hex}-{24 hex};Parent={16 hex};Sampled=0`."""
    # Unsampled: pipelined runs no X-Ray daemon, so nothing would receive the segments.
    random = os.urandom(20).hex()
    return f"Root=1-{int(time.time()):08x}-{random[:24]};Parent={random[24:]};Sampled=0"


def event_trace_id(event: Any) -> str | None:
    """The trace header an event carries: the first SQS record's `AWSTraceHeader` (None if none)."""
    if not isinstance(event, dict):
        return None
    records = event.get("Records")
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        return None
    attributes = records[0].get("attributes")
    if isinstance(attributes, dict):
        header = attributes.get("AWSTraceHeader")
        if isinstance(header, str) and header.startswith("Root="):
            return header
    return None


def trace_id_for(event: Any) -> str:
    """The invocation's `_X_AMZN_TRACE_ID`: the event's own trace header, else a fresh one."""
    return event_trace_id(event) or new_trace_id()


@dataclass(frozen=True, slots=True)
class TraceContext:
    """A trace header's parts in OpenTelemetry's terms: 32-hex trace id, 16-hex parent span id, sampled."""

    trace_id: str
    parent_id: str | None
    sampled: bool

    def xray_header(self, span_id: str | None = None) -> str:
        """The X-Ray header continuing this trace, with `span_id` (else the parent) as the Parent."""
        parent = span_id or self.parent_id
        header = f"Root=1-{self.trace_id[:8]}-{self.trace_id[8:]}"
        if parent:
            header += f";Parent={parent}"
        return header + f";Sampled={int(self.sampled)}"


_HEX = frozenset("0123456789abcdef")


def _is_hex(value: str, length: int) -> bool:
    return len(value) == length and set(value) <= _HEX and value.strip("0") != ""


def parse_xray(header: str) -> TraceContext | None:
    """`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1` (None if malformed)."""
    fields = dict(part.strip().partition("=")[::2] for part in header.split(";") if "=" in part)
    root = fields.get("Root", "").lower().split("-")
    if len(root) != 3 or root[0] != "1" or not _is_hex(root[1] + root[2], 32):
        return None
    parent = fields.get("Parent", "").lower() or None
    if parent is not None and not _is_hex(parent, 16):
        parent = None
    return TraceContext(root[1] + root[2], parent, fields.get("Sampled") == "1")


def parse_traceparent(header: str) -> TraceContext | None:
    """W3C `traceparent`: `00-{32 hex trace id}-{16 hex parent id}-{2 hex flags}` (None if malformed)."""
    parts = header.strip().lower().split("-")
    if len(parts) < 4 or parts[0] == "ff" or not _is_hex(parts[1], 32) or not _is_hex(parts[2], 16):
        return None
    try:
        flags = int(parts[3][:2], 16)
    except ValueError:
        return None
    return TraceContext(parts[1], parts[2], bool(flags & 1))


def http_trace_id(headers: Mapping[str, str]) -> str:
    """The X-Ray header an HTTP request carries (`X-Amzn-Trace-Id`, else `traceparent`), or ""."""
    xray = headers.get("X-Amzn-Trace-Id", "")
    if xray and parse_xray(xray) is not None:
        return xray
    context = parse_traceparent(headers.get("traceparent", ""))
    return context.xray_header() if context is not None else ""
