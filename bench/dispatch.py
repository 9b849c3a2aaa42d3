"""Dispatcher overhead: pipelined's full path vs a bare asyncio loop doing the unavoidable work.

Both feed a no-op sync handler batches of 10 records. pipelined runs the real dispatcher: in-memory
source -> filter -> invoke (context, environment overlay, log attribution, START/END/REPORT logging,
timeout, reserved-concurrency slot) -> settle with a checkpoint per batch
(group-committed to SQLite) -> metrics.
The bare loop only builds a context, hands the batch to a worker thread, awaits it and records the
outcome. Run: .venv/bin/python bench/dispatch.py [--batches N]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipelined.config import FunctionConfig
from pipelined.core.context import LambdaContext
from pipelined.core.records import Batch, Outcome
from pipelined.dispatch.runner import SourceRunner
from pipelined.functions.function import Function
from pipelined.invoke.service import InvocationKind, InvokeService
from pipelined.observe.logs import setup_logging
from pipelined.observe.metrics import Metrics
from pipelined.sources.memory import MemorySource
from pipelined.state import Checkpoint, StateStore

BATCH = 10
HANDLER = "def handler(event, context):\n    return None\n"


class CheckpointingSource(MemorySource):
    """The in-memory source, settling like a stream: one checkpoint write per batch."""

    def __init__(self, state: StateStore, total_batches: int) -> None:
        super().__init__(batch_size=BATCH)
        self.state = state
        self.remaining = total_batches
        self.done = asyncio.Event()

    async def settle(self, batch: Batch, outcome: Outcome) -> None:
        self.state.checkpoints.save_soon(
            [Checkpoint("bench/memory", "stream", "shard-0", batch.records[-1].id)]
        )
        self.remaining -= 1
        if self.remaining == 0:
            self.done.set()

    def failure_context(self, batch: Batch) -> Mapping[str, Any]:
        return {}


async def run_pipelined(batches: int, workdir: Path, state_dir: Path) -> float:
    state = await StateStore.open(state_dir)
    config = FunctionConfig(handler="noop.handler", code=workdir, timeout=30)
    function = Function("bench", config, "us-east-1")
    function.load()
    source = CheckpointingSource(state, batches)
    for i in range(batches * BATCH):
        source.put({"n": i})
    metrics = Metrics()
    runner = SourceRunner(
        InvokeService(metrics).caller(function, source.name, InvocationKind.EVENT_SOURCE),
        source,
        metrics.for_source("bench", "memory"),
        None,
    )
    started = time.perf_counter()
    await runner.start()
    await source.done.wait()
    await state.checkpoints.flush()
    elapsed = time.perf_counter() - started
    await runner.stop(5)
    await state.close()
    return elapsed


async def run_bare(batches: int, workdir: Path) -> float:
    function = Function("bench", FunctionConfig(handler="noop.handler", code=workdir), "us-east-1")
    function.load()
    handler = function.handler
    assert handler is not None
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(1)
    outcomes: list[Any] = []
    events = [{"Records": [{"n": i * BATCH + j} for j in range(BATCH)]} for i in range(batches)]
    started = time.perf_counter()
    for event in events:
        context = LambdaContext(function.environment, "request-id", function.arn, time.monotonic() + 30)
        outcomes.append(await loop.run_in_executor(pool, handler, event, context))
    elapsed = time.perf_counter() - started
    pool.shutdown()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=7, help="interleaved runs of each; the best counts")
    parser.add_argument("--log-level", default="WARNING", help="INFO includes START/END/REPORT lines")
    args = parser.parse_args()
    # START/END/REPORT are formatted either way; WARNING keeps the terminal from being the bottleneck.
    setup_logging(args.log_level, "text", stream=open("/dev/null", "w"))  # noqa: SIM115
    logging.getLogger("pipelined").setLevel(args.log_level)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "noop.py").write_text(HANDLER)
        asyncio.run(run_bare(200, workdir))  # warm-up
        asyncio.run(run_pipelined(200, workdir, workdir / "warm"))
        # Interleaved so both see the same machine weather; best-of-N filters scheduler noise.
        bare_times, full_times = [], []
        for i in range(args.repeat):
            bare_times.append(asyncio.run(run_bare(args.batches, workdir)))
            full_times.append(asyncio.run(run_pipelined(args.batches, workdir, workdir / f"run{i}")))
        bare, full = min(bare_times), min(full_times)
    records = args.batches * BATCH
    bare_rate, full_rate = records / bare, records / full
    overhead_us = (full - bare) / args.batches * 1e6
    print(f"batches of {BATCH}, {args.batches} invocations, best of {args.repeat} interleaved runs")
    print(
        f"bare asyncio loop : {bare_rate:>10,.0f} records/s  ({bare / args.batches * 1e6:6.1f} us/invocation)"
    )
    print(
        f"pipelined         : {full_rate:>10,.0f} records/s  ({full / args.batches * 1e6:6.1f} us/invocation)"
    )
    print(f"ratio             : {full_rate / bare_rate:.2f}  (target >= 0.5)")
    print(f"overhead          : {overhead_us:.1f} us per invocation  (target <= 50)")


if __name__ == "__main__":
    main()
