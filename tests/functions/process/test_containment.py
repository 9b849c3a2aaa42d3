"""A handler that hangs, exits, segfaults or exhausts memory fails its invocation, never the daemon."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

from pipelined.functions.function import FunctionRuntime
from pipelined.observe.metrics import Metrics
from tests.functions.process.conftest import sample
from tests.support import until


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_hanging_sync_handler_is_killed_at_timeout_while_other_invocations_continue(
    isolated: Callable[..., FunctionRuntime], metrics: Metrics
) -> None:
    fn = isolated("hang", timeout=1)
    started = time.monotonic()
    stuck = asyncio.create_task(fn.invoke({"hang": True}))
    # Meanwhile the same function keeps serving from other workers.
    others = [await fn.invoke({}) for _ in range(5)]
    assert all(r.ok for r in others) and time.monotonic() - started < 1
    stuck_result = await stuck
    elapsed = time.monotonic() - started
    assert stuck_result.error == {
        "errorMessage": "Task timed out after 1.00 seconds",
        "errorType": "Sandbox.Timedout",
        "stackTrace": [],
    }
    assert 1 <= elapsed < 2
    assert sample(metrics, "pipelined_worker_restarts_total", cause="timeout") == 1
    # The killed worker is gone; the function still works.
    busy_pids = {r.value["pid"] for r in others}
    after = await fn.invoke({})
    assert after.ok and after.value["pid"] in busy_pids
    assert fn.pool is not None and len(fn.pool.workers) == 1


async def test_killed_worker_is_replaced_by_a_fresh_one(isolated: Callable[..., FunctionRuntime]) -> None:
    fn = isolated("hang", timeout=1)
    first = await fn.invoke({})
    assert (await fn.invoke({"hang": True})).error is not None
    await until(lambda: not alive(first.value["pid"]), timeout=5, message="the stuck worker killed")
    replacement = await fn.invoke({})
    assert replacement.ok and replacement.value["pid"] != first.value["pid"]
    assert replacement.init_duration_ms is not None  # a cold start


async def test_os_exit_fails_the_invocation_with_runtime_exit_error(
    isolated: Callable[..., FunctionRuntime], metrics: Metrics
) -> None:
    fn = isolated("exit_now")
    result = await fn.invoke({"status": 3})
    assert result.error == {
        "errorMessage": f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 3",
        "errorType": "Runtime.ExitError",
        "stackTrace": [],
    }
    assert sample(metrics, "pipelined_worker_restarts_total", cause="crash") == 1


async def test_segfault_is_contained_and_the_next_invocation_gets_a_new_worker(
    isolated: Callable[..., FunctionRuntime], metrics: Metrics
) -> None:
    crash = isolated("segfault")
    healthy = isolated("info", name="healthy")
    before = await healthy.invoke({})
    result = await crash.invoke({})
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.ExitError"
    assert result.error["errorMessage"].endswith("Runtime exited with error: signal: segmentation fault")
    again = await crash.invoke({})
    assert again.error is not None and again.error["errorType"] == "Runtime.ExitError"
    assert sample(metrics, "pipelined_worker_restarts_total", cause="crash") == 2
    # Another function's warm worker was not affected.
    after = await healthy.invoke({})
    assert after.ok and after.value["pid"] == before.value["pid"]


async def test_memory_hog_fails_with_out_of_memory_and_the_function_recovers(
    isolated: Callable[..., FunctionRuntime], metrics: Metrics
) -> None:
    hog = isolated("hog", memory_mb=128)
    result = await hog.invoke({})
    assert result.error is not None
    assert result.error["errorType"] == "Runtime.OutOfMemory"
    assert "Runtime exited with error: out of memory (memory_mb 128 exceeded)" in result.error["errorMessage"]
    assert sample(metrics, "pipelined_worker_restarts_total", cause="oom") == 1
    info = isolated("info", name="after", memory_mb=128)
    assert (await info.invoke({})).ok


async def test_unserializable_response_is_lambdas_marshal_error(
    isolated: Callable[..., FunctionRuntime],
) -> None:
    fn = isolated("unserializable")
    result = await fn.invoke({})
    assert result.error is not None and result.error["errorType"] == "Runtime.MarshalError"
    assert result.error["errorMessage"].startswith("Unable to marshal response: Object of type set")
    assert (await fn.invoke({})).error is not None  # the worker is still usable: same error again


async def test_handler_exception_keeps_the_worker_warm(isolated: Callable[..., FunctionRuntime]) -> None:
    fn = isolated("fail")
    first, second = await fn.invoke({}), await fn.invoke({})
    assert first.error is not None and first.error["errorType"] == "ValueError"
    assert first.error["errorMessage"] == "handler failed"
    assert any("isolation_handlers.py" in line for line in first.error["stackTrace"])
    assert not any("pipelined/functions/process" in line for line in first.error["stackTrace"])
    assert second.init_duration_ms is None
    assert fn.pool is not None and len(fn.pool.workers) == 1


async def test_cancelled_invocation_kills_its_worker(isolated: Callable[..., FunctionRuntime]) -> None:
    fn = isolated("info")
    pid = (await fn.invoke({})).value["pid"]
    task = asyncio.create_task(fn.invoke({"sleep": 30}))
    await until(lambda: fn.pool is not None and fn.pool.idle == 0, timeout=5)
    task.cancel()
    await until(lambda: not alive(pid), timeout=5, message="the worker killed")
    assert (await fn.invoke({})).ok
