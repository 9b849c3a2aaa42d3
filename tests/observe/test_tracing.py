"""`tracing: active`: each invocation is an OpenTelemetry span, child of the trace the event came with."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from pipelined.core.tracing import parse_traceparent, parse_xray
from tests.config.support import problems_of, write
from tests.http.support import call, lambda_client
from tests.support import DaemonProcess, free_port, wait_until, write_config

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class OtlpReceiver:
    """An OTLP/HTTP endpoint: decodes every ExportTraceServiceRequest it is sent (protobuf)."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        received = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource in request.resource_spans:
                    service = {a.key: a.value.string_value for a in resource.resource.attributes}
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            received.append(
                                {
                                    "path": self.path,
                                    "service": service.get("service.name"),
                                    "name": span.name,
                                    "trace_id": span.trace_id.hex(),
                                    "span_id": span.span_id.hex(),
                                    "parent_span_id": span.parent_span_id.hex(),
                                    "status": span.status.code,
                                    "attributes": {a.key: _value(a.value) for a in span.attributes},
                                }
                            )
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def span_for(self, request_id: str) -> dict[str, Any] | None:
        return next((s for s in self.spans if s["attributes"].get("faas.invocation_id") == request_id), None)


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonProcess, OtlpReceiver, int]]:
    receiver = OtlpReceiver()
    directory = tmp_path_factory.mktemp("tracing")
    gateway = free_port()
    config = write_config(
        directory,
        {
            "traced": {
                "handler": "tracing_handlers.trace",
                "tracing": "active",
                "events": [
                    {"type": "http_api", "path": "/traced", "method": "get"},
                    {"type": "eventbridge", "pattern": {"source": ["trace.test"]}},
                ],
            },
            "failing": {"handler": "tracing_handlers.fail", "tracing": "active"},
            "passing": {
                "handler": "tracing_handlers.trace",
                "events": [{"type": "http_api", "path": "/passed", "method": "get"}],
            },
        },
        gateway={"listen": f"127.0.0.1:{gateway}"},
        tracing={"otlp_endpoint": f"http://127.0.0.1:{receiver.port}", "service_name": "orders-app"},
    )
    process = DaemonProcess(config).start()
    try:
        yield process, receiver, gateway
    finally:
        process.stop()
        receiver.server.shutdown()


def test_an_http_request_with_traceparent_becomes_the_parent_of_the_invocation_span(traced: Any) -> None:
    _, receiver, gateway = traced
    reply = call(gateway, "GET", "/traced", headers=[("traceparent", f"00-{TRACE}-{PARENT}-01")])
    assert reply.status == 200
    handler_header = parse_xray(reply.body.decode())
    assert handler_header is not None and handler_header.trace_id == TRACE and handler_header.sampled
    span = wait_until(lambda: next((s for s in receiver.spans if s["trace_id"] == TRACE), None), timeout=15)
    assert span["path"] == "/v1/traces" and span["service"] == "orders-app" and span["name"] == "traced"
    assert span["parent_span_id"] == PARENT
    # The handler's own instrumentation continues under the invocation's span.
    assert handler_header.parent_id == span["span_id"]
    attributes = span["attributes"]
    assert attributes["faas.trigger"] == "http" and attributes["pipelined.outcome"] == "success"
    assert attributes["cloud.resource_id"].endswith(":function:traced")
    assert isinstance(attributes["faas.coldstart"], bool) and attributes["faas.invocation_id"]
    assert span["status"] == 1  # STATUS_CODE_OK


def test_a_failed_invocation_through_the_lambda_api_is_an_error_span_under_the_callers_trace(
    traced: Any,
) -> None:
    process, receiver, _ = traced
    client = lambda_client(process)
    xray = f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent={PARENT};Sampled=1"
    client.meta.events.register(
        "before-sign.lambda.Invoke", lambda request, **_: request.headers.__setitem__("X-Amzn-Trace-Id", xray)
    )
    reply = client.invoke(FunctionName="failing", Payload=b"{}")
    assert reply["FunctionError"] == "Unhandled"
    request_id = reply["ResponseMetadata"]["RequestId"]
    span = wait_until(lambda: receiver.span_for(request_id), timeout=15)
    assert span["trace_id"] == TRACE and span["parent_span_id"] == PARENT
    assert span["status"] == 2  # STATUS_CODE_ERROR
    assert span["attributes"]["error.type"] == "ValueError"
    assert span["attributes"]["pipelined.outcome"] == "error"
    error = json.loads(reply["Payload"].read())
    assert f"Parent={span['span_id']}" in error["errorMessage"]


def test_asynchronous_invocations_keep_the_trace_they_arrived_with(traced: Any) -> None:
    process, receiver, _ = traced
    # Invoke's X-Amzn-Trace-Id with InvocationType Event: queued on disk, the trace with it.
    lambda_trace, events_trace = "5759e988bd862e3fe1be46a994272793", "6a3ce929d0e0e47364bf92f3577b34da"
    client = lambda_client(process)
    header = f"Root=1-{lambda_trace[:8]}-{lambda_trace[8:]};Parent={PARENT};Sampled=1"
    client.meta.events.register(
        "before-sign.lambda.Invoke",
        lambda request, **_: request.headers.__setitem__("X-Amzn-Trace-Id", header),
    )
    assert client.invoke(FunctionName="traced", InvocationType="Event", Payload=b"{}")["StatusCode"] == 202
    # PutEvents' TraceHeader: the rule's invocation continues it.
    events = boto3.client(
        "events",
        endpoint_url=f"http://127.0.0.1:{process.api_port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    entry = {
        "Source": "trace.test",
        "DetailType": "Traced",
        "Detail": "{}",
        "TraceHeader": f"Root=1-{events_trace[:8]}-{events_trace[8:]};Parent={PARENT};Sampled=1",
    }
    assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    for trace in (lambda_trace, events_trace):
        span = wait_until(
            lambda t=trace: next((s for s in receiver.spans if s["trace_id"] == t), None),  # type: ignore[misc]
            timeout=15,
            message=f"a span of trace {trace}",
        )
        assert span["parent_span_id"] == PARENT and span["name"] == "traced"
        assert span["attributes"]["faas.trigger"] == "other"


def test_pass_through_functions_get_the_callers_header_and_send_no_span(traced: Any) -> None:
    _, receiver, gateway = traced
    before = len(receiver.spans)
    reply = call(gateway, "GET", "/passed", headers=[("traceparent", f"00-{TRACE}-{PARENT}-01")])
    assert reply.body.decode() == f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent={PARENT};Sampled=1"
    call(gateway, "GET", "/traced")  # an active one after it: once its span is in, the other would be too
    wait_until(lambda: len(receiver.spans) > before, timeout=15)
    assert all(s["name"] != "passing" for s in receiver.spans)


def test_trace_headers_parse_as_aws_and_w3c_write_them() -> None:
    xray = parse_xray(f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent={PARENT};Sampled=1")
    assert xray is not None and (xray.trace_id, xray.parent_id, xray.sampled) == (TRACE, PARENT, True)
    assert parse_xray("Root=1-zz;Parent=1") is None
    w3c = parse_traceparent(f"00-{TRACE}-{PARENT}-00")
    assert (
        w3c is not None and w3c.xray_header() == f"Root=1-{TRACE[:8]}-{TRACE[8:]};Parent={PARENT};Sampled=0"
    )
    assert parse_traceparent(f"00-{'0' * 32}-{PARENT}-01") is None  # an all-zero trace id is invalid


def test_active_tracing_without_an_endpoint_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return 1\n")
    path = write(
        tmp_path, f"functions:\n  f:\n    code: {tmp_path}\n    handler: app.handler\n    tracing: active\n"
    )
    problems = problems_of(path)
    assert problems == [
        f"{path}:5: functions.f.tracing: active tracing needs tracing.otlp_endpoint (an OTLP/HTTP URL)"
    ]
