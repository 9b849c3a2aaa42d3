"""`provided` functions: a `bootstrap` of any kind talking to the Runtime API, and AWS's own clients."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelined.aws import AwsClients
from pipelined.config import AwsConfig, FunctionConfig
from pipelined.errors import HandlerLoadError
from pipelined.functions.function import Function
from pipelined.observe.metrics import Metrics
from tests.functions.runtime_api.conftest import PROVIDED, sample
from tests.support import invoke, until


async def test_the_tutorials_bash_bootstrap_runs_unchanged(
    function: Callable[..., Function], caplog: pytest.LogCaptureFixture
) -> None:
    # tests/handlers/provided/tutorial is AWS's "Building a custom runtime" tutorial, unchanged.
    fn = function("function.handler", PROVIDED / "tutorial", runtime="provided.al2023")
    with caplog.at_level(logging.INFO):
        first = await invoke(fn, {"text": "Hello"})
        second = await invoke(fn, {"text": "again"})
    # Not JSON: the tutorial's response is text, passed through as a string.
    assert first.value == """Echoing request: '{"text":"Hello"}'"""
    assert second.value == """Echoing request: '{"text":"again"}'""" and second.init_duration_ms is None
    # The handler echoes the event to stderr: attributed to its invocation.
    echoed = [r for r in caplog.records if r.getMessage() == '{"text":"Hello"}']
    assert [getattr(r, "request_id", None) for r in echoed] == [first.request_id]


async def test_bootstrap_that_exits_during_init_is_an_exit_error(
    function: Callable[..., Function], metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    fn = function("anything", PROVIDED / "init_exit", runtime="provided")
    with caplog.at_level(logging.INFO):
        result = await invoke(fn, {})
    assert result.error is not None and result.error.error_type == "Runtime.ExitError"
    assert result.error.error_message.endswith("Error: Runtime exited with error: exit status 3")
    assert any(r.getMessage() == "cannot initialise: missing configuration" for r in caplog.records)
    await until(lambda: sample(metrics, "pipelined_worker_restarts_total", cause="init_error") == 1)
    with pytest.raises(HandlerLoadError, match=r"Runtime\.ExitError"):
        await function("anything", PROVIDED / "init_exit", runtime="provided", name="other").start()


async def test_bootstrap_that_never_answers_times_out(function: Callable[..., Function]) -> None:
    fn = function("anything", PROVIDED / "silent", runtime="provided", timeout=1)
    result = await invoke(fn, {})
    assert result.error is not None and result.error.payload()["errorType"] == "Sandbox.Timedout"
    assert (await invoke(fn, {})).init_duration_ms is not None  # killed, and replaced


def ric_layer(tmp_path: Path) -> Path:
    """A layer whose bootstrap runs awslambdaric, AWS's Python Runtime API client, on _HANDLER."""
    layer = tmp_path / "ric-layer"
    layer.mkdir()
    bootstrap = layer / "bootstrap"
    bootstrap.write_text(f'#!/bin/sh\nexec {sys.executable} -m awslambdaric "$_HANDLER"\n')
    bootstrap.chmod(0o755)
    return layer


async def test_awslambdaric_runs_a_python_handler_through_our_runtime_api(
    function: Callable[..., Function], tmp_path: Path
) -> None:
    pytest.importorskip("awslambdaric")
    layer = ric_layer(tmp_path)
    fn = function("app.handler", PROVIDED / "ric", runtime="provided.al2", layers=[layer], timeout=5)
    result = await invoke(fn, {"hello": "ric"})
    assert result.error is None, result.error
    value = result.value
    assert value["echo"] == {"hello": "ric"} and value["request_id"] == result.request_id
    assert value["function_name"] == "fn" and value["cwd"] == str(PROVIDED / "ric")
    assert 3000 < value["remaining_ms"] <= 5000  # from Lambda-Runtime-Deadline-Ms
    assert value["trace"].startswith("Root=1-") and value["trace"].endswith(";Sampled=0")
    # An SQS message's trace header continues in the runtime, through Lambda-Runtime-Trace-Id.
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    traced = await invoke(fn, {"Records": [{"attributes": {"AWSTraceHeader": header}}]})
    assert traced.value["trace"] == header
    failing = function("app.fails", PROVIDED / "ric", runtime="provided.al2", layers=[layer], name="f")
    error = (await invoke(failing, {})).error
    assert error is not None
    assert (error.error_type, error.error_message) == ("ValueError", "ric says no")
    assert any("app.py" in line for line in error.payload()["stackTrace"])


async def test_a_runtime_api_function_with_a_role_gets_its_credentials(aws: str, tmp_path: Path) -> None:
    clients = AwsClients(AwsConfig(endpoint_url=aws))
    config = FunctionConfig(
        code=PROVIDED / "ric",
        handler="app.whoami",
        runtime="provided.al2",
        layers=[ric_layer(tmp_path)],
        isolation="process",
        timeout=10,
        role="arn:aws:iam::123456789012:role/ric-role",
    )
    fn = Function("ric", config, "us-east-1", aws=lambda: clients)
    fn.load()
    try:
        result = await invoke(fn, {})
    finally:
        await fn.close(0)
        await clients.close()
    assert result.error is None, result.error
    assert result.value["arn"] == "arn:aws:sts::123456789012:assumed-role/ric-role/ric"
