"""Node.js functions through the Runtime API: pipelined's own runtime client running real handlers."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelined.functions.function import Function
from pipelined.functions.runtime_api.launch import RUNTIME_DIR
from pipelined.observe.metrics import Metrics
from tests.functions.runtime_api.conftest import NODE, sample
from tests.support import invoke, run_cli, until, write_config


async def test_the_guides_handler_runs_unchanged_and_logs_tagged_lines(
    function: Callable[..., Function], caplog: pytest.LogCaptureFixture
) -> None:
    # tests/handlers/node/guide/index.js is the first example of AWS's "Node.js handler" page.
    fn = function("index.handler", NODE / "guide")
    with caplog.at_level(logging.INFO):
        result = await invoke(fn, {"key": "value"})
    assert result.error is None
    assert result.value == fn.log_stream_name
    assert result.init_duration_ms is not None  # a cold start
    lines = [r for r in caplog.records if r.name == "pipelined.function"]
    (line,) = [r for r in lines if "EVENT:" in r.getMessage()]
    # Lambda's text line was parsed: the request id is the record's, the newlines are back.
    assert line.getMessage() == 'EVENT: \n{\n  "key": "value"\n}'
    assert getattr(line, "request_id", None) == result.request_id
    warm = await invoke(fn, {})
    assert warm.value == fn.log_stream_name and warm.init_duration_ms is None


async def test_esm_with_top_level_await_and_context_fields(function: Callable[..., Function]) -> None:
    fn = function("index.handler", NODE / "esm", memory_mb=256)
    first = await invoke(fn, {"n": 1})
    second = await invoke(fn, {"n": 2})
    assert first.error is None, first.error
    assert first.value["kind"] == "esm" and first.value["event"] == {"n": 1}
    assert (first.value["invocations"], second.value["invocations"]) == (1, 2)  # one warm worker
    assert first.value["initialisedAt"] == second.value["initialisedAt"]
    assert first.value["requestId"] == first.request_id
    assert first.value["functionName"] == "fn"
    assert first.value["memoryLimitInMB"] == "256"  # a string, as on Lambda
    assert first.value["arn"] == fn.arn


async def test_js_file_is_an_es_module_when_package_json_says_so(function: Callable[..., Function]) -> None:
    result = await invoke(function("app.handler", NODE / "module"), {"x": 1})
    assert result.value == {"kind": "module", "event": {"x": 1}}


async def test_callback_style_handlers(function: Callable[..., Function]) -> None:
    fn = function("handlers.callback", NODE / "misc")
    assert (await invoke(fn, {"value": 7})).value == {"style": "callback", "value": 7}
    # The response waits for the event loop to drain: the timer scheduled after callback() has run.
    waits = await invoke(function("handlers.waitsForEmptyLoop", NODE / "misc", name="w"), {})
    assert waits.value == ["timer ran before the response"]
    failed = await invoke(function("handlers.callbackError", NODE / "misc", name="e"), {})
    assert failed.error is not None
    assert (failed.error.error_type, failed.error.error_message) == ("TypeError", "bad input")


async def test_thrown_error_is_lambdas_error_object_and_the_worker_stays_warm(
    function: Callable[..., Function],
) -> None:
    fn = function("handlers.thrown", NODE / "misc")
    result = await invoke(fn, {})
    assert result.error is not None
    payload = result.error.payload()
    assert (payload["errorType"], payload["errorMessage"]) == ("Error", "boom")
    assert payload["trace"][0] == "Error: boom" and "handlers.js" in payload["trace"][1]
    assert "stackTrace" not in payload  # Node.js says `trace`, and Lambda passes it on unchanged
    again = await invoke(fn, {})
    assert again.error is not None and again.init_duration_ms is None


async def test_remaining_time_counts_down_from_the_timeout(function: Callable[..., Function]) -> None:
    result = await invoke(function("handlers.remaining", NODE / "misc", timeout=5), {})
    first, second = result.value["first"], result.value["second"]
    assert 4000 < first <= 5000
    assert 150 <= first - second < 1500


async def test_timeout_kills_the_worker_and_the_next_invocation_starts_a_new_one(
    function: Callable[..., Function], metrics: Metrics
) -> None:
    fn = function("handlers.sleep", NODE / "misc", timeout=1)
    result = await invoke(fn, {})
    assert result.error is not None
    assert result.error.payload() == {
        "errorMessage": "Task timed out after 1.00 seconds",
        "errorType": "Sandbox.Timedout",
        "stackTrace": [],
    }
    assert 1000 <= result.duration_ms < 2000
    await until(lambda: sample(metrics, "pipelined_worker_restarts_total", cause="timeout") == 1)
    again = await invoke(fn, {})
    assert again.init_duration_ms is not None  # a fresh worker


async def test_environment_is_exactly_lambdas_and_cwd_is_the_code(
    function: Callable[..., Function], caplog: pytest.LogCaptureFixture
) -> None:
    fn = function("handlers.environment", NODE / "misc", environment={"MINE": "yes"})
    with caplog.at_level(logging.INFO):
        result = await invoke(fn, {})
    env, cwd = result.value["env"], result.value["cwd"]
    assert cwd == str(NODE / "misc")
    expected = {
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": fn.log_stream_name,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_EXECUTION_ENV": "AWS_Lambda_nodejs20.x",
        "_HANDLER": "handlers.environment",
        "LAMBDA_TASK_ROOT": str(NODE / "misc"),
        "MINE": "yes",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }
    assert {k: env[k] for k in expected} == expected
    assert env["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    assert env["LAMBDA_RUNTIME_DIR"] == str(RUNTIME_DIR)
    daemon_only = set(os.environ) - set(env)
    assert "PATH" in env and "HOME" not in env and daemon_only  # nothing else of the daemon's
    allowed = {*expected, "AWS_LAMBDA_RUNTIME_API", "LAMBDA_RUNTIME_DIR"}
    allowed |= {"PATH", "LD_LIBRARY_PATH", "NODE_PATH", "_X_AMZN_TRACE_ID"}
    allowed |= {k for k in os.environ if k.startswith("AWS_ENDPOINT_URL") or k.startswith("AWS_SECRET")}
    allowed |= {"AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"}
    assert set(env) <= allowed, set(env) - allowed
    messages = {r.getMessage(): r for r in caplog.records if r.name == "pipelined.function"}
    assert messages["line one\nline two"].levelno == logging.INFO
    assert messages["an error line"].levelno == logging.ERROR


async def test_crash_is_runtime_exit_error(function: Callable[..., Function], metrics: Metrics) -> None:
    result = await invoke(function("handlers.crash", NODE / "misc"), {})
    assert result.error is not None and result.error.error_type == "Runtime.ExitError"
    assert result.error.error_message.endswith("Error: Runtime exited with error: exit status 3")
    await until(lambda: sample(metrics, "pipelined_worker_restarts_total", cause="crash") == 1)


async def test_memory_limit_is_runtime_out_of_memory(function: Callable[..., Function]) -> None:
    result = await invoke(function("handlers.hog", NODE / "misc", memory_mb=128, timeout=20), {})
    # Buffers live outside V8's heap: the process tree's resident memory is what crosses the limit.
    assert result.error is not None and result.error.error_type == "Runtime.OutOfMemory", result.error
    assert result.error.error_message.endswith("out of memory (memory_mb 128 exceeded)")


async def test_missing_export_is_an_init_error_at_start(function: Callable[..., Function]) -> None:
    fn = function("handlers.nothing", NODE / "misc")
    result = await invoke(fn, {})
    assert result.error is not None
    assert result.error.payload()["errorType"] == "Runtime.HandlerNotFound"
    assert result.error.error_message == "handlers.nothing is undefined or not exported"


def test_cli_invoke_prints_the_error_object_and_fails(tmp_path: Path) -> None:
    code = str(NODE / "misc")
    config = write_config(
        tmp_path, {"fn": {"runtime": "nodejs20.x", "handler": "handlers.thrown", "code": code}}
    )
    done = run_cli("invoke", "fn", "-c", str(config))
    assert done.returncode == 1, done.stderr
    payload = json.loads(done.stdout)
    assert (payload["errorType"], payload["errorMessage"]) == ("Error", "boom")
    assert isinstance(payload["trace"], list)
