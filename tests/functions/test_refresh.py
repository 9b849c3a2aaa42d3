"""Function.refresh (hot reload): inline re-imports its code directory, a process pool recycles workers."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pipelined.config import FunctionConfig
from pipelined.functions.function import Function
from pipelined.observe.metrics import Metrics
from tests.support import invoke, until

HANDLER = """import os
from refresh_helper import VALUE


def handler(event, context):
    return {"value": VALUE, "pid": os.getpid()}
"""
SLOW_HANDLER = """import time
from slow_refresh_helper import VALUE


def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"value": VALUE}
"""


def _code(tmp_path: Path, module: str, handler: str, helper: str) -> Path:
    (tmp_path / f"{module}.py").write_text(handler)
    (tmp_path / f"{helper}.py").write_text('VALUE = "v1"\n')
    return tmp_path


async def test_inline_refresh_imports_a_changed_helper_module_and_a_failure_keeps_the_old(
    tmp_path: Path,
) -> None:
    code = _code(tmp_path, "inline_refresh", HANDLER, "refresh_helper")
    fn = Function(
        "fn", FunctionConfig(handler="inline_refresh.handler", code=code, isolation="inline"), "eu-west-1"
    )
    fn.load()
    first = await invoke(fn, {})
    assert first.value["value"] == "v1" and first.init_duration_ms is not None
    assert (await invoke(fn, {})).init_duration_ms is None
    helper = code / "refresh_helper.py"
    helper.write_text('VALUE = "v2"  # saved\n')
    assert await fn.refresh({helper}) is None
    again = await invoke(fn, {})
    assert again.value["value"] == "v2"
    assert again.init_duration_ms is not None  # the first invocation of the new code reports its init
    helper.write_text("VALUE = undefined\n")
    error = await fn.refresh({helper})
    assert error is not None and error.error_type == "NameError"
    assert any(f'"{helper}", line 1' in line for line in error.stack_trace or ())
    assert (await invoke(fn, {})).value["value"] == "v2"


async def test_a_recycled_pool_keeps_its_provisioned_workers_and_lets_busy_ones_finish(
    tmp_path: Path,
) -> None:
    code = _code(tmp_path, "process_refresh", SLOW_HANDLER, "slow_refresh_helper")
    metrics = Metrics()
    config = FunctionConfig(
        handler="process_refresh.handler", code=code, isolation="process", provisioned_concurrency=2
    )
    fn = Function("fn", config, "eu-west-1", metrics.for_function("fn"))
    fn.load()
    try:
        await fn.start()
        pool = fn.runtime.pool  # type: ignore[attr-defined]
        old = {w.pid for w in pool.workers}
        busy = asyncio.ensure_future(invoke(fn, {"sleep": 1}))
        await until(lambda: pool.idle == 1, message="the slow invocation holding a worker")
        (code / "slow_refresh_helper.py").write_text('VALUE = "v2"\n')
        assert await fn.refresh({code / "slow_refresh_helper.py"}) is None
        fresh = {w.pid for w in pool.workers} - old
        assert len(fresh) == 2 and pool.idle == 2  # two provisioned workers on the new code, warm
        assert (await invoke(fn, {})).value == {"value": "v2"}
        assert (await busy).value == {"value": "v1"}  # finished on the code it started with
        assert {w.pid for w in pool.workers} == fresh  # ...and its worker then left
        assert metrics.registry.get_sample_value("pipelined_workers", {"function": "fn"}) == 2
        for pid in old:
            await _gone(pid)
    finally:
        await fn.close(0)


async def _gone(pid: int) -> None:
    def exited() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    await until(exited, timeout=5, message=f"worker {pid} to exit")
