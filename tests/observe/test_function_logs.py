"""What a handler's errors, prints and logging look like in the daemon's log, in text and in JSON.

Inline and process handlers give the same lines: awslambdaric's `[ERROR] Type: message` with the stack,
bare JSON lines passed through, Lambda's JSON log format field for field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.http.support import lambda_client
from tests.support import TEST_FUNCTIONS, DaemonProcess, wait_until, write_config

MODES = ("inline", "process")


def functions() -> dict[str, Any]:
    return {
        f"{name}_{mode}": {"handler": f"log_handlers.{name}", "isolation": mode}
        for name in ("fail", "talk")
        for mode in MODES
    }


@pytest.fixture(scope="module", params=["text", "json"])
def daemon_log(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    directory = tmp_path_factory.mktemp(f"logs-{request.param}")
    config = write_config(directory, functions(), logging={"format": request.param})
    process = DaemonProcess(config).start()
    yield request.param, process
    process.stop()


def invoke(process: DaemonProcess, name: str, event: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
    """Invoke through the Lambda API; the request id, the response and its payload."""
    response = lambda_client(process).invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return response["ResponseMetadata"]["RequestId"], response, json.loads(response["Payload"].read())


def finished(fmt: str, process: DaemonProcess, request_id: str) -> list[str]:
    """The daemon's log lines once the invocation's REPORT (its last line) has been written."""
    needle = (
        f"REPORT RequestId: {request_id}"
        if fmt == "text"
        else f'"type": "platform.report", "record": {{"requestId": "{request_id}"'
    )
    return wait_until(lambda: needle in process.logs() and process.logs().splitlines(), timeout=10)


def json_lines(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.startswith("{")]


@pytest.mark.parametrize("mode", MODES)
def test_a_handler_error_is_awslambdarics_error_object_and_error_line(daemon_log: Any, mode: str) -> None:
    fmt, process = daemon_log
    request_id, response, error = invoke(process, f"fail_{mode}", {"n": 7})
    assert response["FunctionError"] == "Unhandled"
    assert list(error) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "boom 7")
    assert error["requestId"] == request_id
    assert any("log_handlers.py" in frame and "in fail" in frame for frame in error["stackTrace"])
    lines = finished(fmt, process, request_id)
    if fmt == "text":
        head = f"[fail_{mode}] {request_id} [ERROR] ValueError: boom 7"
        at = next(i for i, line in enumerate(lines) if line.endswith(head))
        assert lines[at + 1] == "Traceback (most recent call last):"
        assert 'log_handlers.py", line' in lines[at + 2] and lines[at + 2].endswith(", in fail")
        assert lines[at + 3].strip() == "raise ValueError(f\"boom {event.get('n')}\")"
        assert any(f"START RequestId: {request_id}" in line for line in lines[:at])
        return
    entries = json_lines(lines)
    [logged] = [e for e in entries if e.get("errorType") == "ValueError" and e.get("requestId") == request_id]
    assert logged == {
        "timestamp": logged["timestamp"],
        "level": "ERROR",
        **error,
        "function": f"fail_{mode}",
    }
    platform = {e["type"]: e for e in entries if "record" in e and e["record"].get("requestId") == request_id}
    assert platform["platform.start"]["record"] == {"requestId": request_id, "version": "$LATEST"}
    done = platform["platform.runtimeDone"]["record"]
    assert (done["status"], done["errorType"]) == ("failure", "ValueError")
    report = platform["platform.report"]
    assert set(report) == {"time", "type", "record", "function"}
    metrics = report["record"]["metrics"]
    assert report["record"]["status"] == "failure" and metrics["durationMs"] > 0
    assert metrics["billedDurationMs"] >= 1 and metrics["memorySizeMB"] == 128
    assert metrics["maxMemoryUsedMB"] > 0


@pytest.mark.parametrize("mode", MODES)
def test_prints_and_logging_keep_their_shape_and_request_id(daemon_log: Any, mode: str) -> None:
    fmt, process = daemon_log
    request_id, _, value = invoke(process, f"talk_{mode}", {"n": 3})
    assert value == "ok"
    lines = finished(fmt, process, request_id)
    bare = '{"kind": "bare", "n": 3}'
    if fmt == "text":
        # Exactly as printed: an EMF extractor or a log shipper reads it as the handler wrote it.
        assert bare in lines
        assert any(line.endswith(f"[talk_{mode}] {request_id} plain 3") for line in lines)
        assert any(line.endswith(f"[talk_{mode}] {request_id} info 3") for line in lines)
        at = next(i for i, line in enumerate(lines) if line.endswith(f"{request_id} lookup failed"))
        assert lines[at + 1] == "Traceback (most recent call last):"
        return
    # The printed object stays the printed text, with the request id added at its end.
    assert bare[:-1] + f',"requestId":"{request_id}"}}' in lines
    mine = [e for e in json_lines(lines) if e.get("requestId") == request_id and "level" in e]
    by_message = {e["message"]: e for e in mine}
    plain = by_message["plain 3"]
    assert plain == {
        "timestamp": plain["timestamp"],
        "level": "INFO",
        "message": "plain 3",
        "requestId": request_id,
        "function": f"talk_{mode}",
    }
    info = by_message["info 3"]
    assert info == {
        "timestamp": info["timestamp"],
        "level": "INFO",
        "message": "info 3",
        "logger": "app",
        "requestId": request_id,
        "function": f"talk_{mode}",
        "order": "o-1",
    }
    failed = by_message["lookup failed"]
    assert (failed["level"], failed["logger"]) == ("ERROR", "app")
    assert (failed["errorType"], failed["errorMessage"]) == ("KeyError", "'missing'")
    assert any("log_handlers.py" in frame for frame in failed["stackTrace"])
    # awslambdaric's location: the file, function and line of the logging call.
    source = (TEST_FUNCTIONS / "log_handlers.py").read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if "app_log.exception" in text)
    assert failed["location"] == f"{TEST_FUNCTIONS / 'log_handlers.py'}:talk:{line}"
    assert info["timestamp"].endswith("Z") and len(info["timestamp"]) == len("2026-01-01T00:00:00.000Z")
