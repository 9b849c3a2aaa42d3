"""The `_X_AMZN_TRACE_ID` of an invocation: the event's own trace header, else a fresh X-Ray id."""

from __future__ import annotations

import re
import time

from pipelined.core.tracing import event_trace_id, new_trace_id, trace_id_for

HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def test_fresh_trace_ids_have_xrays_format_and_the_current_epoch() -> None:
    ids = {new_trace_id() for _ in range(100)}
    assert len(ids) == 100
    for trace in ids:
        match = re.fullmatch(r"Root=1-([0-9a-f]{8})-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0", trace)
        assert match is not None, trace
        assert abs(int(match.group(1), 16) - time.time()) < 5


def test_an_sqs_batch_continues_its_first_messages_trace() -> None:
    event = {"Records": [{"attributes": {"AWSTraceHeader": HEADER}}, {"attributes": {}}]}
    assert event_trace_id(event) == trace_id_for(event) == HEADER


def test_events_without_a_trace_header_get_a_fresh_one() -> None:
    for event in [None, [], {}, {"Records": []}, {"Records": [{"attributes": {"AWSTraceHeader": "junk"}}]}]:
        assert event_trace_id(event) is None
        assert trace_id_for(event).startswith("Root=1-")
