"""X-Ray trace headers: the `_X_AMZN_TRACE_ID` every invocation gets, from its event or fresh.

Lambda sets `_X_AMZN_TRACE_ID` for every invocation; tracing libraries (the X-Ray SDK, powertools
`Tracer`) read it and complain on every call when it is missing. An event that carries a trace header
(SQS's `AWSTraceHeader` system attribute) continues that trace; any other gets a new, unsampled one.
"""

from __future__ import annotations

import os
import time
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
