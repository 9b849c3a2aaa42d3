"""Warm workers: environment, init once per worker, provisioned concurrency, idle reaping, logs."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelined.config import FunctionConfig
from pipelined.errors import HandlerLoadError
from pipelined.functions.function import PYTHON_RUNTIME_DIR, Function
from pipelined.observe.metrics import Metrics
from tests.functions.process.conftest import sample
from tests.support import TEST_FUNCTIONS, invoke, until


async def test_worker_environment_is_the_functions_not_the_daemons(
    isolated: Callable[..., Function], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINED_DAEMON_SECRET", "must not leak")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:4566")
    fn = isolated("info", environment={"GREETING": "bonjour", "TZ": "Europe/Paris"}, memory_mb=256, timeout=7)
    result = await invoke(fn, {})
    env = result.value["environment"]
    assert "PIPELINED_DAEMON_SECRET" not in env and "HOME" not in env
    assert env["GREETING"] == "bonjour" and env["TZ"] == "Europe/Paris"  # the function's own win
    assert env["AWS_ACCESS_KEY_ID"] == "AKIDEXAMPLE"  # passed through deliberately
    assert env["AWS_ENDPOINT_URL_SQS"] == "http://127.0.0.1:4566"
    python_bin = sys.executable.rsplit("/", 1)[0]
    assert env.pop("_X_AMZN_TRACE_ID").startswith("Root=1-")  # per invocation
    assert env == {
        "GREETING": "bonjour",
        "TZ": "Europe/Paris",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_ENDPOINT_URL_SQS": "http://127.0.0.1:4566",
        "PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "LAMBDA_RUNTIME_DIR": PYTHON_RUNTIME_DIR,
        "LAMBDA_TASK_ROOT": str(TEST_FUNCTIONS),
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{sys.version_info.major}.{sys.version_info.minor}",
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
        "AWS_LAMBDA_LOG_STREAM_NAME": fn.log_stream_name,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "_HANDLER": "isolation_handlers.info",
    }
    assert result.value["cwd"] == str(TEST_FUNCTIONS)  # LAMBDA_TASK_ROOT, as in Lambda


async def test_context_has_every_attribute_and_counts_down_to_the_deadline(
    isolated: Callable[..., Function],
) -> None:
    fn = isolated("info", timeout=5, memory_mb=512)
    quick = await invoke(fn, {}, request_id="req-1")
    slow = await invoke(fn, {"sleep": 0.3})
    context = quick.value["context"]
    assert context == {
        "function_name": "fn",
        "function_version": "$LATEST",
        "invoked_function_arn": "arn:aws:lambda:eu-west-1:000000000000:function:fn",
        "memory_limit_in_mb": "512",
        "aws_request_id": "req-1",
        "log_group_name": "/aws/lambda/fn",
        "log_stream_name": fn.log_stream_name,
        "identity": {"cognito_identity_id": None, "cognito_identity_pool_id": None},
        "client_context": None,
        "remaining_ms": context["remaining_ms"],
    }
    assert 4800 < context["remaining_ms"] <= 5000
    assert 4500 < slow.value["context"]["remaining_ms"] <= 4700


async def test_module_init_runs_once_per_worker_across_many_invocations(
    isolated: Callable[..., Function], metrics: Metrics
) -> None:
    fn = isolated("info")
    results = [await invoke(fn, {}) for _ in range(20)]
    assert {r.value["pid"] for r in results} == {results[0].value["init_pid"]}
    assert {r.value["inits"] for r in results} == {1}
    assert results[0].init_duration_ms is not None
    assert all(r.init_duration_ms is None for r in results[1:])
    assert sample(metrics, "pipelined_cold_starts_total") == 1
    assert sample(metrics, "pipelined_init_duration_seconds_count") == 1


async def test_concurrent_invocations_grow_the_pool_one_worker_each(
    isolated: Callable[..., Function], metrics: Metrics
) -> None:
    fn = isolated("info")
    results = await asyncio.gather(*(invoke(fn, {"sleep": 0.2}) for _ in range(3)))
    assert len({r.value["pid"] for r in results}) == 3
    assert sample(metrics, "pipelined_workers") == 3
    again = await asyncio.gather(*(invoke(fn, {}) for _ in range(3)))
    assert {r.value["pid"] for r in again} == {r.value["pid"] for r in results}  # warm reuse


async def test_provisioned_workers_are_warm_before_the_first_event(
    isolated: Callable[..., Function], metrics: Metrics
) -> None:
    fn = isolated("info", provisioned_concurrency=2)
    await fn.start()
    assert sample(metrics, "pipelined_cold_starts_total") == 2
    assert fn.runtime.pool is not None and fn.runtime.pool.idle == 2
    results = await asyncio.gather(invoke(fn, {"sleep": 0.1}), invoke(fn, {"sleep": 0.1}))
    assert all(r.init_duration_ms is None for r in results)  # no Init Duration in REPORT
    assert {r.value["environment"]["AWS_LAMBDA_INITIALIZATION_TYPE"] for r in results} == {
        "provisioned-concurrency"
    }
    assert sample(metrics, "pipelined_cold_starts_total") == 2


async def test_idle_workers_beyond_provisioned_are_reaped(
    isolated: Callable[..., Function], metrics: Metrics
) -> None:
    fn = isolated("info", provisioned_concurrency=1, idle_timeout=0.3)
    await fn.start()
    await asyncio.gather(*(invoke(fn, {"sleep": 0.2}) for _ in range(3)))
    assert fn.runtime.pool is not None and len(fn.runtime.pool.workers) == 3
    await until(lambda: len(fn.runtime.pool.workers) == 1, timeout=5, message="idle workers reaped")
    assert sample(metrics, "pipelined_worker_restarts_total", cause="idle") == 2
    assert sample(metrics, "pipelined_workers") == 1
    assert (await invoke(fn, {})).init_duration_ms is None  # the provisioned one stayed warm


async def test_handler_output_is_attributed_to_the_request(
    isolated: Callable[..., Function], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fn = isolated("chatty")
    result = await invoke(fn, {})
    assert result.value == "ok"
    lines = {
        (r.getMessage(), r.levelname)
        for r in caplog.records
        if r.name == "pipelined.function" and getattr(r, "request_id", None) == result.request_id
    }
    assert lines == {
        ("to stdout", "INFO"),
        ("to stderr", "ERROR"),
        ("a warning from logging", "WARNING"),
        ("no newline at the end", "INFO"),
    }
    messages = [r.getMessage() for r in caplog.records]
    report = next(m for m in messages if m.startswith(f"REPORT RequestId: {result.request_id}"))
    assert "Max Memory Used: " in report and "Init Duration: " in report
    # Output comes before END, like an inline invocation's.
    assert messages.index("no newline at the end") < messages.index(f"END RequestId: {result.request_id}")


async def test_async_handler_runs_in_the_worker(isolated: Callable[..., Function]) -> None:
    fn = isolated("async_info", timeout=2)
    first, second = await invoke(fn, {}), await invoke(fn, {})
    assert first.value["pid"] == second.value["pid"]
    assert 1800 < first.value["remaining_ms"] <= 2000


async def test_handler_that_cannot_initialise_fails_start_with_lambdas_error(
    isolated: Callable[..., Function], metrics: Metrics
) -> None:
    missing = isolated("nope")
    with pytest.raises(HandlerLoadError, match=r"Runtime\.HandlerNotFound: Handler 'nope' missing"):
        await missing.start()
    failing = isolated("info", name="failing", environment={"FAIL_INIT": "1"})
    with pytest.raises(HandlerLoadError, match="RuntimeError: init failed on purpose"):
        await failing.start()
    # Started lazily (pipelined invoke), the invocation fails with the init error instead.
    lazy = isolated("info", name="lazy", environment={"FAIL_INIT": "1"})
    result = await invoke(lazy, {})
    assert result.error is not None and result.error.error_message == "init failed on purpose"
    assert sample(metrics, "pipelined_worker_restarts_total", cause="init_error") == 1


async def test_close_waits_for_the_invocation_in_flight(isolated: Callable[..., Function]) -> None:
    fn = isolated("info")
    running = asyncio.create_task(invoke(fn, {"sleep": 0.3}))
    # Running, not still starting: a worker that is killed during its cold start fails its invocation.
    await until(
        lambda: fn.runtime.pool is not None and any(w.reply is not None for w in fn.runtime.pool.workers),
        timeout=5,
    )
    await fn.close(5)
    result = await running
    assert result.ok
    assert fn.runtime.pool is not None and not fn.runtime.pool.workers


async def test_after_a_failed_reload_warm_workers_serve_the_old_code_and_a_new_worker_the_files_on_disk(
    tmp_path: Path, metrics: Metrics
) -> None:
    # docs/development.md: "the previous code" of a process function is its warm workers'.
    module = tmp_path / "app.py"
    module.write_text(
        "import time\n\ndef handler(event, context):\n    time.sleep(event['sleep'])\n    return 1\n"
    )
    config = FunctionConfig(handler="app.handler", code=tmp_path, isolation="process")
    fn = Function("fn", config, "eu-west-1", metrics.for_function("fn"))
    fn.load()
    try:
        await fn.start()
        module.write_text("def handler(event, context:\n    return 2\n")
        error = await fn.refresh([module])
        assert error is not None and error.error_type == "Runtime.UserCodeSyntaxError"
        warm, cold = await asyncio.gather(invoke(fn, {"sleep": 0.5}), invoke(fn, {"sleep": 0}))
        assert (warm.value, warm.error) == (1, None)
        assert cold.error is not None and cold.error.error_type == "Runtime.UserCodeSyntaxError"
        assert "Syntax error in module 'app'" in cold.error.error_message
    finally:
        await fn.close(0)
