"""What the local log store (`pipelined logs`) costs per invocation: the invoke path with and without it.

Both runs invoke a no-op inline handler N times through the invoke service with INFO logging (START,
END and REPORT per invocation) to /dev/null; the second also keeps every line in a LogStore, flushed
to disk every 0.5 s as in the daemon. A bare loop calling the handler gives the floor.
Run: .venv/bin/python bench/log_store.py [--invocations N]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path

from pipelined.config import FunctionConfig
from pipelined.functions.function import Function
from pipelined.invoke.service import InvocationKind, InvokeService
from pipelined.observe.log_store import LogStore
from pipelined.observe.logs import setup_logging
from pipelined.observe.metrics import Metrics

HANDLER = "def handler(event, context):\n    print('hello')\n    return None\n"


async def invoke_many(workdir: Path, count: int, store: LogStore | None) -> float:
    config = FunctionConfig(handler="noop.handler", code=workdir, timeout=30, isolation="inline")
    function = Function("bench", config, "us-east-1")
    function.load()
    caller = InvokeService(Metrics()).caller(function, "bench", InvocationKind.EVENT)
    if store is not None:
        store.start(asyncio.get_running_loop())
        logging.getLogger().addHandler(store)
    try:
        started = time.perf_counter()
        for n in range(count):
            await caller.invoke({"n": n})
        elapsed = time.perf_counter() - started
    finally:
        if store is not None:
            logging.getLogger().removeHandler(store)
            store.close()  # the last flush counts too
            elapsed = time.perf_counter() - started
    return elapsed


def bare(count: int) -> float:
    namespace: dict[str, object] = {}
    exec(HANDLER.replace("print('hello')", "pass"), namespace)
    handler = namespace["handler"]
    started = time.perf_counter()
    for n in range(count):
        handler({"n": n}, None)  # type: ignore[operator]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--invocations", type=int, default=20000)
    args = parser.parse_args()
    setup_logging("INFO", "text", stream=open("/dev/null", "w"))  # noqa: SIM115
    n = args.invocations
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "noop.py").write_text(HANDLER)
        floor = bare(n)
        # Alternate the two runs three times and keep each one's best: the machine's noise is larger
        # than the difference being measured.
        without, kept = [], []
        for round_ in range(3):
            without.append(asyncio.run(invoke_many(workdir, n, None)))
            store = LogStore(workdir / f"logs-{round_}", 64 * 1024 * 1024, 86400)
            kept.append(asyncio.run(invoke_many(workdir, n, store)))
        lines = sum(1 for _ in (workdir / "logs-0" / "bench.jsonl").open())
    best_without, best_kept = min(without), min(kept)
    print(f"bare handler calls:      {n / floor:>10.0f}/s")
    print(
        f"invoke, no log store:    {n / best_without:>10.0f}/s  {best_without / n * 1e6:6.1f} us/invocation"
    )
    print(f"invoke, with log store:  {n / best_kept:>10.0f}/s  {best_kept / n * 1e6:6.1f} us/invocation")
    print(f"lines kept per run: {lines}")
    cost = (best_kept - best_without) / n * 1e6
    print(f"log store cost: {cost:.1f} us/invocation; throughput with/without {best_without / best_kept:.2f}")


if __name__ == "__main__":
    main()
