"""The invoke service: slots and throttles by invocation kind, typed results, logs and metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from pipelined.config import FunctionConfig
from pipelined.functions.function import Function
from pipelined.invoke.service import (
    InvocationKind,
    InvokeService,
    ThrottledError,
    UnknownFunctionError,
)
from pipelined.observe.metrics import Metrics
from tests.support import TEST_FUNCTIONS, until

Make = Callable[..., Function]


@pytest_asyncio.fixture(loop_scope="function")
async def make() -> AsyncIterator[Make]:
    made: list[Function] = []

    def build(handler: str, **options: Any) -> Function:
        config = FunctionConfig(handler=f"batch_handlers.{handler}", code=TEST_FUNCTIONS, **options)
        function = Function("fn", config, "eu-west-1")
        function.load()
        made.append(function)
        return function

    yield build
    for function in made:
        await function.close(0)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return float(metrics.registry.get_sample_value(name, {"function": "fn", **labels}) or 0.0)


def records(**first: Any) -> dict[str, Any]:
    return {"Records": [{"id": "1", **first}]}


async def test_the_result_carries_the_handlers_return_value_and_is_counted(make: Make) -> None:
    metrics = Metrics()
    service = InvokeService(metrics, {"fn": make("reply")})
    result = await service.invoke("fn", records(response={"answer": 42}), source="api")
    assert result.ok and result.value == {"answer": 42} and result.error is None
    assert len(result.request_id) == 36 and result.duration_ms >= 0
    assert sample(metrics, "pipelined_invocations_total", source="api") == 1
    assert sample(metrics, "pipelined_errors_total", source="api") == 0
    assert sample(metrics, "pipelined_duration_seconds_count", source="api") == 1


async def test_a_handler_error_is_a_typed_lambda_error_with_the_handlers_stack(make: Make) -> None:
    metrics = Metrics()
    service = InvokeService(metrics)
    result = await service.invoke(make("poison"), records(poison=True), source="api")
    assert not result.ok and result.value is None and result.error is not None
    assert (result.error.error_type, result.error.error_message) == ("ValueError", "poison record in batch")
    assert any("batch_handlers.py" in frame for frame in result.error.stack_trace or ())
    assert not any("pipelined" in frame for frame in result.error.stack_trace or ())
    payload = result.error.payload()
    # awslambdaric's error object, key for key, with the invocation's own request id.
    assert list(payload) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert payload["requestId"] == result.request_id
    assert sample(metrics, "pipelined_errors_total", source="api") == 1
    assert sample(metrics, "pipelined_invocations_total", source="api") == 1


async def test_a_synchronous_caller_is_refused_at_once_when_reserved_concurrency_is_taken(make: Make) -> None:
    metrics = Metrics()
    function = make("sleep_sync", reserved_concurrency=1, timeout=5)
    service = InvokeService(metrics, {"fn": function})
    running = asyncio.create_task(service.invoke("fn", records(sleep=0.3), source="api"))
    await until(lambda: function.in_flight == 1, timeout=5)
    with pytest.raises(ThrottledError, match="reserved concurrency"):
        await service.invoke("fn", records(), InvocationKind.REQUEST_RESPONSE, source="api")
    assert sample(metrics, "pipelined_throttles_total", source="api") == 1
    assert (await running).ok
    # Throttles are not invocations (Lambda's Invocations metric excludes them).
    assert sample(metrics, "pipelined_invocations_total", source="api") == 1


async def test_an_event_source_caller_waits_for_a_slot_and_counts_a_throttle(make: Make) -> None:
    metrics = Metrics()
    function = make("sleep_sync", reserved_concurrency=1, timeout=5)
    service = InvokeService(metrics, {"fn": function})
    caller = service.caller("fn", "queue", InvocationKind.EVENT_SOURCE)
    first = asyncio.create_task(caller.invoke(records(sleep=0.2)))
    await until(lambda: function.in_flight == 1, timeout=5)
    second = await caller.invoke(records())
    assert second.ok and (await first).ok
    assert sample(metrics, "pipelined_throttles_total", source="queue") == 1
    assert sample(metrics, "pipelined_invocations_total", source="queue") == 2


async def test_concurrent_executions_are_read_from_the_function_while_it_runs(make: Make) -> None:
    metrics = Metrics()
    function = make("sleep_async", timeout=5)
    service = InvokeService(metrics, {"fn": function})
    tasks = [asyncio.create_task(service.invoke("fn", records(sleep=0.3))) for _ in range(3)]
    await until(lambda: sample(metrics, "pipelined_concurrent_executions") == 3, timeout=5)
    await asyncio.gather(*tasks)
    assert sample(metrics, "pipelined_concurrent_executions") == 0


async def test_start_end_and_report_carry_the_request_id(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pipelined.lambda")
    result = await InvokeService().invoke(make("reply"), records(response=None), request_id="req-7")
    assert result.request_id == "req-7"
    lines = [r.getMessage() for r in caplog.records if r.name == "pipelined.lambda"]
    assert lines[0] == "START RequestId: req-7 Version: $LATEST"
    assert lines[1] == "END RequestId: req-7"
    assert lines[2].startswith("REPORT RequestId: req-7\tDuration: ") and "Init Duration" in lines[2]
    again = await InvokeService().invoke(make("reply"), records(response=None))
    assert again.init_duration_ms is not None  # a new function: its first invocation is a cold start


async def test_an_unknown_function_is_named_in_the_error() -> None:
    with pytest.raises(UnknownFunctionError, match="no function 'missing'"):
        await InvokeService().invoke("missing", {})


async def test_a_process_isolated_function_goes_through_the_same_path(make: Make) -> None:
    metrics = Metrics()
    function = make("environment", isolation="process", environment={"GREETING": "hi"})
    await function.start()
    result = await InvokeService(metrics).invoke(function, {}, source="api")
    assert (
        result.ok
        and result.value["GREETING"] == "hi"
        and result.value["_HANDLER"] == "batch_handlers.environment"
    )
    assert sample(metrics, "pipelined_invocations_total", source="api") == 1
