"""Process isolation costs: warm invoke round trip (process vs inline) and cold start.

Warm: invoke(Function, ) on a no-op sync handler, one invocation at a time, START/END/REPORT
formatted (logged to /dev/null at WARNING unless --log-level INFO). The difference between the two modes
is the price of isolation per invocation: frame the event as JSON, socket round trip, run, frame the
reply. Cold: a new function's first invocation with the zygote already running (the daemon's steady
state): fork, confine, import the handler, invoke; plus the one-off zygote start.
Run: .venv/bin/python bench/isolation.py [--invocations N] [--cold N]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path

from pipelined.config import FunctionConfig
from pipelined.functions.function import Function
from pipelined.invoke.service import InvokeService
from pipelined.observe.logs import setup_logging

HANDLER = "def handler(event, context):\n    return None\n"
SERVICE = InvokeService()


async def invoke(function: Function, event: object) -> object:
    """One invocation through the invoke service, as every caller makes it."""
    return await SERVICE.invoke(function, event)


EVENT = {"Records": [{"n": n, "body": "x" * 64} for n in range(10)]}


async def warm(isolation: str, code: Path, invocations: int) -> float:
    """Seconds per invocation, best of three runs."""
    config = FunctionConfig(handler="noop.handler", code=code, timeout=30, isolation=isolation)
    function = Function("bench", config, "us-east-1")
    function.load()
    await function.start()
    for _ in range(200):  # warm-up
        await invoke(function, EVENT)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(invocations):
            await invoke(function, EVENT)
        best = min(best, (time.perf_counter() - started) / invocations)
    await function.close()
    return best


async def cold(code: Path, count: int) -> tuple[float, list[float]]:
    """(first spawn including the zygote start, then spawn-to-first-result of `count` new functions)."""
    config = FunctionConfig(handler="noop.handler", code=code, timeout=30, isolation="process")
    # Keeps the zygote up between the measured functions, as a running daemon does.
    keeper = Function("keeper", config, "us-east-1")
    keeper.load()
    started = time.perf_counter()
    await invoke(keeper, EVENT)
    first = time.perf_counter() - started
    times: list[float] = []
    for n in range(count):
        function = Function(f"cold{n}", config, "us-east-1")
        function.load()
        started = time.perf_counter()
        result = await invoke(function, EVENT)
        times.append(time.perf_counter() - started)
        assert result.ok, result.error
        await function.close()
    await keeper.close()
    return first, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--invocations", type=int, default=5000)
    parser.add_argument("--cold", type=int, default=30)
    parser.add_argument("--log-level", default="WARNING", help="INFO includes START/END/REPORT lines")
    args = parser.parse_args()
    setup_logging(args.log_level, "text", stream=open("/dev/null", "w"))  # noqa: SIM115
    logging.getLogger("pipelined").setLevel(args.log_level)
    with tempfile.TemporaryDirectory() as tmp:
        code = Path(tmp)
        (code / "noop.py").write_text(HANDLER)
        inline = asyncio.run(warm("inline", code, args.invocations))
        process = asyncio.run(warm("process", code, args.invocations))
        first, colds = asyncio.run(cold(code, args.cold))
    overhead_ms = (process - inline) * 1000
    colds_ms = sorted(t * 1000 for t in colds)
    p95 = colds_ms[min(len(colds_ms) - 1, int(len(colds_ms) * 0.95))]
    print(f"warm invoke, no-op handler, {len(EVENT['Records'])}-record event, best of 3 x {args.invocations}")
    print(f"inline            : {inline * 1e6:8.1f} us/invocation")
    print(f"process           : {process * 1e6:8.1f} us/invocation")
    print(f"overhead          : {overhead_ms:8.3f} ms/invocation  (target <= 0.3)")
    print(f"cold start, spawn to first result, {len(colds_ms)} new functions, zygote running")
    print(f"median            : {statistics.median(colds_ms):8.1f} ms  (target <= 50)")
    print(f"p95               : {p95:8.1f} ms")
    print(f"first ever        : {first * 1000:8.1f} ms  (includes starting the zygote, once per daemon)")


if __name__ == "__main__":
    main()
