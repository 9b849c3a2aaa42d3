"""SQS consumer overhead: pipelined (no-op handler) vs a bare aiobotocore receive/delete loop, against moto.

moto runs in a separate process (its CPU is not counted) together with a feeder thread that keeps the
queue at most --depth deep by calling moto's backend directly (moto slows down with queue depth, and a
feeder speaking HTTP would compete for the same two cores). Both consumers run in this process, one
after the other, at the same concurrency, asking SQS for the same attributes (pipelined needs them
all for Lambda's record shape), and are timed from the first message fed until the last is deleted:
  - bare: CONCURRENCY tasks, each ReceiveMessage (10, long poll) -> DeleteMessageBatch, nothing else;
  - pipelined: the real `sqs` source and dispatcher (scaling pollers, heartbeat, Lambda records,
    reserved-concurrency slot, no-op sync handler on a worker thread, settle, metrics).
Consumer CPU is time.process_time() of this process (every thread, handler threads included).
moto is the bottleneck, so CPU per 1,000 messages is the figure that shows pipelined's overhead.
Run: .venv/bin/python bench/sqs.py [--messages N] [--concurrency C] [--runs R] [--depth D] [--log-level INFO]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from pipelined.app.assembly import build_function, build_runner
from pipelined.aws import AwsClients
from pipelined.config import AwsConfig, Config, FunctionConfig
from pipelined.invoke.service import InvokeService
from pipelined.observe.logs import setup_logging
from pipelined.observe.metrics import Metrics
from pipelined.state import StateStore

DEPTH = 100  # default; at most 200 (moto slows down the deeper its queue)
REGION = "us-east-1"
HANDLER = "def handler(event, context):\n    return None\n"


# --- the server process: moto plus a feeder ------------------------------------------------------------


def serve(depth: int) -> None:
    """moto on a free loopback port; reads `feed QUEUE COUNT` lines from stdin and feeds that queue."""
    from moto.server import ThreadedMotoServer
    from moto.sqs.models import sqs_backends

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    host, port = server.get_host_and_port()
    print(f"http://{host}:{port}", flush=True)
    backend = sqs_backends["123456789012"][REGION]

    def feed(name: str, count: int) -> None:
        queue = backend.get_queue(name)
        sent = 0
        while sent < count:
            room = min(depth - len(queue._messages), count - sent)
            if room < min(10, count - sent):
                time.sleep(0.002)
                continue
            for _ in range(room):
                backend.send_message(name, "x" * 100)
            sent += room

    for line in sys.stdin:
        _, name, count = line.split()
        threading.Thread(target=feed, args=(name, int(count)), daemon=True).start()


class Server:
    """The server process, seen from the benchmark."""

    def __init__(self, depth: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--depth", str(depth)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()

    def feed(self, queue: str, count: int) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"feed {queue} {count}\n")
        self.process.stdin.flush()

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


# --- the two consumers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """One consumer run: wall seconds and consumer CPU seconds for `messages` messages."""

    messages: int
    seconds: float
    cpu: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu / self.messages * 1000


async def _create_queue(endpoint: str, name: str) -> str:
    async with get_session().create_client("sqs", region_name=REGION, endpoint_url=endpoint) as sqs:
        return str((await sqs.create_queue(QueueName=name))["QueueUrl"])


async def _measure(server: Server, queue: str, total: int, done: Callable[[], Awaitable[None]]) -> Result:
    cpu = time.process_time()
    started = time.perf_counter()
    server.feed(queue, total)
    await done()
    return Result(total, time.perf_counter() - started, time.process_time() - cpu)


async def run_bare(server: Server, queue: str, total: int, concurrency: int) -> Result:
    url = await _create_queue(server.url, queue)
    config = AioConfig(retries={"mode": "standard"}, connect_timeout=5, read_timeout=30)
    async with get_session().create_client(
        "sqs", region_name=REGION, endpoint_url=server.url, config=config
    ) as sqs:
        deleted = 0
        finished = asyncio.Event()

        async def worker() -> None:
            nonlocal deleted
            while True:
                response = await sqs.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=20,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
                messages = response.get("Messages", [])
                if messages:
                    entries = [
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                    ]
                    await sqs.delete_message_batch(QueueUrl=url, Entries=entries)
                    deleted += len(messages)
                    if deleted >= total:
                        finished.set()

        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        result = await _measure(server, queue, total, finished.wait)
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return result


async def run_pipelined(server: Server, queue: str, total: int, concurrency: int, workdir: Path) -> Result:
    await _create_queue(server.url, queue)
    function = FunctionConfig(
        handler="noop.handler",
        code=workdir,
        timeout=30,
        events=[{"type": "sqs", "name": "bench", "queue": queue, "maximum_concurrency": concurrency}],
    )
    config = Config(functions={"bench": function}, aws=AwsConfig(region=REGION, endpoint_url=server.url))
    state = await StateStore.open(workdir / f"state-{queue}")
    clients = AwsClients(config.aws)
    metrics = Metrics()
    function = build_function("bench", config, metrics)
    function.load()
    runner = build_runner(
        function, config.functions["bench"].events[0], config, InvokeService(metrics), state, clients, metrics
    )
    source = runner.source
    await runner.start()
    deleted = metrics.events.labels("bench", "bench", "deleted")
    finished = asyncio.Event()
    settle = source.settle

    async def settle_and_check(batch: Any, outcome: Any) -> None:
        await settle(batch, outcome)
        if deleted._value.get() >= total:
            finished.set()

    source.settle = settle_and_check  # type: ignore[method-assign]
    result = await _measure(server, queue, total, finished.wait)
    await runner.stop(5)
    await clients.close()
    await state.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--messages", type=int, default=5000, help="messages per run (default 5000)")
    parser.add_argument(
        "--concurrency", type=int, default=5, help="pollers / maximum_concurrency (default 5)"
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each consumer, alternating (default 3)")
    parser.add_argument("--depth", type=int, default=DEPTH, choices=range(10, 201), metavar="10..200")
    parser.add_argument("--log-level", default="WARNING", help="INFO includes START/END/REPORT lines")
    args = parser.parse_args()
    if args.serve:
        serve(args.depth)
        return
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION)
    setup_logging(args.log_level, "text", stream=open("/dev/null", "w"))  # noqa: SIM115
    logging.getLogger("pipelined").setLevel(args.log_level)
    server = Server(args.depth)
    bare: list[Result] = []
    full: list[Result] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            (workdir / "noop.py").write_text(HANDLER)
            asyncio.run(run_bare(server, "warm-bare", 500, args.concurrency))
            asyncio.run(run_pipelined(server, "warm-pipelined", 500, args.concurrency, workdir))
            for n in range(args.runs):
                # Alternate which goes first, so a slow spell of the machine hurts both alike.
                pair = [
                    lambda n=n: asyncio.run(run_bare(server, f"bare-{n}", args.messages, args.concurrency)),
                    lambda n=n: asyncio.run(
                        run_pipelined(server, f"pipelined-{n}", args.messages, args.concurrency, workdir)
                    ),
                ]
                if n % 2:
                    full_result, bare_result = pair[1](), pair[0]()
                else:
                    bare_result, full_result = pair[0](), pair[1]()
                bare.append(bare_result)
                full.append(full_result)
    finally:
        server.stop()
    _report(args, bare, full)


def _report(args: Any, bare: list[Result], full: list[Result]) -> None:
    rate_bare = statistics.median(r.rate for r in bare)
    rate_full = statistics.median(r.rate for r in full)
    cpu_bare = statistics.median(r.cpu_per_1000 for r in bare)
    cpu_full = statistics.median(r.cpu_per_1000 for r in full)
    # Ratios of runs made back to back, so the machine's load varies less within a pair.
    rate_ratio = statistics.median(f.rate / b.rate for b, f in zip(bare, full, strict=True))
    cpu_ratio = statistics.median(f.cpu_per_1000 / b.cpu_per_1000 for b, f in zip(bare, full, strict=True))
    print(
        f"{args.messages} messages per run, concurrency {args.concurrency}, queue <= {args.depth} deep, "
        f"{args.runs} pairs of runs, log level {args.log_level}; medians:"
    )
    print(f"bare aiobotocore loop : {rate_bare:8,.0f} messages/s  {cpu_bare:6.3f} CPU s / 1,000 messages")
    print(f"pipelined             : {rate_full:8,.0f} messages/s  {cpu_full:6.3f} CPU s / 1,000 messages")
    print(f"throughput ratio      : {rate_ratio:.2f}  (target >= 1.0)")
    print(f"CPU ratio             : {cpu_ratio:.2f}  (target <= 1.5)")
    print(
        "per pair (throughput, CPU):",
        ", ".join(
            f"{f.rate / b.rate:.2f}/{f.cpu_per_1000 / b.cpu_per_1000:.2f}"
            for b, f in zip(bare, full, strict=True)
        ),
    )


if __name__ == "__main__":
    main()
