"""A handler that hangs, exits, segfaults or exhausts memory fails its invocation, never the daemon."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelined.functions.function import Function
from pipelined.functions.process import forkserver
from pipelined.observe.metrics import Metrics
from tests.functions.process.conftest import sample
from tests.support import invoke, until


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_hanging_sync_handler_is_killed_at_timeout_while_other_invocations_continue(
    isolated: Callable[..., Function], metrics: Metrics
) -> None:
    fn = isolated("hang", timeout=1)
    started = time.monotonic()
    stuck = asyncio.create_task(invoke(fn, {"hang": True}))
    # Meanwhile the same function keeps serving from other workers.
    others = [await invoke(fn, {}) for _ in range(5)]
    assert all(r.ok for r in others) and time.monotonic() - started < 1
    stuck_result = await stuck
    elapsed = time.monotonic() - started
    assert stuck_result.error is not None and stuck_result.error.payload() == {
        "errorMessage": "Task timed out after 1.00 seconds",
        "errorType": "Sandbox.Timedout",
        "stackTrace": [],
    }
    assert 1 <= elapsed < 2
    assert sample(metrics, "pipelined_worker_restarts_total", cause="timeout") == 1
    # The killed worker is gone; the function still works.
    busy_pids = {r.value["pid"] for r in others}
    after = await invoke(fn, {})
    assert after.ok and after.value["pid"] in busy_pids
    assert fn.runtime.pool is not None and len(fn.runtime.pool.workers) == 1


async def test_a_warm_worker_times_out_its_invocation_at_its_own_deadline_not_an_earlier_ones(
    isolated: Callable[..., Function],
) -> None:
    fn = isolated("hang", timeout=1)
    # The same worker serves these for 0.6 s: each earlier invocation had a deadline before the last one's.
    pids = set()
    for _ in range(4):
        pids.add((await invoke(fn, {})).value["pid"])
        await asyncio.sleep(0.15)
    assert len(pids) == 1
    started = time.monotonic()
    stuck = await invoke(fn, {"hang": True})
    elapsed = time.monotonic() - started
    assert stuck.error is not None and stuck.error.error_type == "Sandbox.Timedout"
    assert 0.99 <= elapsed < 1.5, elapsed
    # A worker that stayed idle past a deadline is not timed out by it.
    fresh = await invoke(fn, {})
    await asyncio.sleep(1.2)
    assert (await invoke(fn, {})).value["pid"] == fresh.value["pid"]


async def test_killed_worker_is_replaced_by_a_fresh_one(isolated: Callable[..., Function]) -> None:
    fn = isolated("hang", timeout=1)
    first = await invoke(fn, {})
    assert (await invoke(fn, {"hang": True})).error is not None
    await until(lambda: not alive(first.value["pid"]), timeout=5, message="the stuck worker killed")
    replacement = await invoke(fn, {})
    assert replacement.ok and replacement.value["pid"] != first.value["pid"]
    assert replacement.init_duration_ms is not None  # a cold start


async def test_os_exit_fails_the_invocation_with_runtime_exit_error(
    isolated: Callable[..., Function], metrics: Metrics
) -> None:
    fn = isolated("exit_now")
    result = await invoke(fn, {"status": 3})
    assert result.error is not None and result.error.payload() == {
        "errorMessage": f"RequestId: {result.request_id} Error: Runtime exited with error: exit status 3",
        "errorType": "Runtime.ExitError",
        "stackTrace": [],
    }
    assert sample(metrics, "pipelined_worker_restarts_total", cause="crash") == 1


async def test_segfault_is_contained_and_the_next_invocation_gets_a_new_worker(
    isolated: Callable[..., Function], metrics: Metrics
) -> None:
    crash = isolated("segfault")
    healthy = isolated("info", name="healthy")
    before = await invoke(healthy, {})
    result = await invoke(crash, {})
    assert result.error is not None
    assert result.error.error_type == "Runtime.ExitError"
    assert result.error.error_message.endswith("Runtime exited with error: signal: segmentation fault")
    again = await invoke(crash, {})
    assert again.error is not None and again.error.error_type == "Runtime.ExitError"
    assert sample(metrics, "pipelined_worker_restarts_total", cause="crash") == 2
    # Another function's warm worker was not affected.
    after = await invoke(healthy, {})
    assert after.ok and after.value["pid"] == before.value["pid"]


async def test_memory_hog_fails_with_out_of_memory_and_the_function_recovers(
    isolated: Callable[..., Function], metrics: Metrics
) -> None:
    hog = isolated("hog", memory_mb=128)
    result = await invoke(hog, {})
    assert result.error is not None
    assert result.error.error_type == "Runtime.OutOfMemory"
    assert "Runtime exited with error: out of memory (memory_mb 128 exceeded)" in result.error.error_message
    assert sample(metrics, "pipelined_worker_restarts_total", cause="oom") == 1
    info = isolated("info", name="after", memory_mb=128)
    assert (await invoke(info, {})).ok


async def test_unserializable_response_is_lambdas_marshal_error(
    isolated: Callable[..., Function],
) -> None:
    fn = isolated("unserializable")
    result = await invoke(fn, {})
    assert result.error is not None and result.error.error_type == "Runtime.MarshalError"
    assert result.error.error_message.startswith("Unable to marshal response: Object of type set")
    assert (await invoke(fn, {})).error is not None  # the worker is still usable: same error again


async def test_handler_exception_keeps_the_worker_warm(isolated: Callable[..., Function]) -> None:
    fn = isolated("fail")
    first, second = await invoke(fn, {}), await invoke(fn, {})
    assert first.error is not None and first.error.error_type == "ValueError"
    assert first.error.error_message == "handler failed"
    assert any("isolation_handlers.py" in line for line in first.error.stack_trace)
    assert not any("pipelined/functions/process" in line for line in first.error.stack_trace)
    assert second.init_duration_ms is None
    assert fn.runtime.pool is not None and len(fn.runtime.pool.workers) == 1


async def test_cancelled_invocation_kills_its_worker(isolated: Callable[..., Function]) -> None:
    fn = isolated("info")
    pid = (await invoke(fn, {})).value["pid"]
    task = asyncio.create_task(invoke(fn, {"sleep": 30}))
    await until(lambda: fn.runtime.pool is not None and fn.runtime.pool.idle == 0, timeout=5)
    task.cancel()
    await until(lambda: not alive(pid), timeout=5, message="the worker killed")
    assert (await invoke(fn, {})).ok


async def test_a_fork_server_that_cannot_start_is_an_invocation_error_not_a_traceback(
    isolated: Callable[..., Function], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # As when the service user may not execute the interpreter.
    unusable = tmp_path / "python3"
    unusable.write_text("")
    unusable.chmod(0o644)
    monkeypatch.setattr(forkserver.sys, "executable", str(unusable))
    fn = isolated("info")
    result = await invoke(fn, {})
    assert result.error is not None and result.error.error_type == "Runtime.Unavailable"
    assert "could not start a worker" in result.error.error_message
    assert "Permission denied" in result.error.error_message
