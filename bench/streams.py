"""Kinesis catch-up: pipelined's stream source against a bare aiobotocore get_records loop.

moto runs as a separate process (its CPU is not ours). For each contender a fresh stream of --shards
shards gets --records records (not timed); then the consumer starts at TRIM_HORIZON while one probe
record per shard is put every 100 ms, so that iterator age can fall once the backlog is gone.
Measured: seconds from starting the consumer until the handler has been given every one of the
records and the iterator age of the latest batch is under 1 s. The handler only counts records.

pipelined runs the whole daemon in-process (config file, dispatcher, checkpoints, metrics) with its
defaults (batch size 100, no batching window). The bare loop opens one TRIM_HORIZON iterator per shard,
calls GetRecords (Limit 10000) back to back while records come and every 200 ms when idle, and hands
the handler batches of 100.
Run: .venv/bin/python bench/streams.py [--records N] [--shards N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from aiobotocore.session import get_session

from pipelined.app.daemon import Daemon
from pipelined.config import load_config
from pipelined.observe.logs import setup_logging

HANDLER = """COUNT = [0]


def handler(event, context):
    COUNT[0] += sum(1 for r in event["Records"] if r["kinesis"]["partitionKey"].startswith("r"))
"""
BATCH = 100
PUT_CHUNK = 500


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return process
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("moto server did not start")


async def fill(kinesis: Any, stream: str, records: int, shards: int) -> None:
    """Create the stream and put the records to be consumed."""
    await kinesis.create_stream(StreamName=stream, ShardCount=shards)
    for start in range(0, records, PUT_CHUNK):
        numbers = range(start, min(records, start + PUT_CHUNK))
        await kinesis.put_records(
            StreamName=stream, Records=[{"Data": b'{"n": %d}' % n, "PartitionKey": f"r{n}"} for n in numbers]
        )


async def probe(kinesis: Any, stream: str, shards: int, stop: asyncio.Event) -> None:
    """One fresh record per shard every 100 ms, until stopped."""
    hash_keys = [str(i * (2**128 // shards)) for i in range(shards)]
    while not stop.is_set():
        probes = [{"Data": b"{}", "PartitionKey": "probe", "ExplicitHashKey": k} for k in hash_keys]
        await kinesis.put_records(StreamName=stream, Records=probes)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


async def until_done(kinesis: Any, stream: str, shards: int, done: Callable[[], bool]) -> float:
    """Probe the stream until `done`; returns the seconds it took."""
    stop = asyncio.Event()
    started = time.monotonic()
    prober = asyncio.create_task(probe(kinesis, stream, shards, stop))
    while not done():  # noqa: ASYNC110 (polling the consumer's state is the measurement)
        await asyncio.sleep(0.005)
    elapsed = time.monotonic() - started
    stop.set()
    await prober
    return elapsed


def write_config(workdir: Path, endpoint: str, stream: str) -> Path:
    path = workdir / f"{stream}.yaml"
    source = {"type": "kinesis", "name": "k", "stream": stream, "starting_position": "TRIM_HORIZON"}
    config = {
        "state_dir": str(workdir / stream),
        "http": {"listen": f"127.0.0.1:{free_port()}"},
        "logging": {"level": "WARNING"},
        "aws": {"region": "us-east-1", "endpoint_url": endpoint},
        # Inline: the handler counts records in this process, and what is measured is the stream
        # engine against the bare loop (bench/dispatch.py measures isolation).
        "functions": {
            "bench": {
                "code": str(workdir),
                "handler": "noop.handler",
                "isolation": "inline",
                "events": [source],
            }
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


async def run_pipelined(
    kinesis: Any, stream: str, records: int, shards: int, workdir: Path
) -> tuple[float, float]:
    """(seconds until done, seconds of daemon start-up within them)."""
    config = load_config(write_config(workdir, kinesis.meta.endpoint_url, stream))
    daemon = Daemon(config)
    started = time.monotonic()
    running = asyncio.create_task(daemon.run())
    while not daemon.runners:  # noqa: ASYNC110 (the daemon offers no event to wait on)
        await asyncio.sleep(0.001)
    startup = time.monotonic() - started
    handler = daemon.functions["bench"].handler
    assert handler is not None
    count: list[int] = handler.__globals__["COUNT"]
    labels = {"function": "bench", "source": "k"}

    def done() -> bool:
        age = daemon.metrics.registry.get_sample_value("pipelined_iterator_age_seconds", labels)
        return count[0] >= records and age is not None and age < 1

    await until_done(kinesis, stream, shards, done)
    elapsed = time.monotonic() - started
    daemon.request_stop()
    await running
    return elapsed, startup


async def run_bare(kinesis: Any, stream: str, records: int, shards: int, workdir: Path) -> float:
    namespace: dict[str, Any] = {}
    exec(HANDLER, namespace)
    handler, count = namespace["handler"], namespace["COUNT"]
    age = [float("inf")]

    async def consume(shard_id: str) -> None:
        response = await kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )
        iterator = response["ShardIterator"]
        while True:
            response = await kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            iterator = response["NextShardIterator"]
            got = [
                {
                    "kinesis": {"partitionKey": r["PartitionKey"], "data": r["Data"]},
                    "arrived": r["ApproximateArrivalTimestamp"],
                }
                for r in response["Records"]
            ]
            for start in range(0, len(got), BATCH):
                chunk = got[start : start + BATCH]
                age[0] = time.time() - chunk[-1]["arrived"].timestamp()
                handler({"Records": chunk}, None)
            if not got:
                await asyncio.sleep(0.2)

    started = time.monotonic()
    listed = (await kinesis.list_shards(StreamName=stream))["Shards"]
    consumers = [asyncio.create_task(consume(s["ShardId"])) for s in listed]
    await until_done(kinesis, stream, shards, lambda: count[0] >= records and age[0] < 1)
    elapsed = time.monotonic() - started
    for task in consumers:
        task.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    return elapsed


async def benchmark(
    endpoint: str, records: int, shards: int, runs: int, workdir: Path
) -> tuple[float, tuple[float, float]]:
    """Best of `runs` for the bare loop and for pipelined, each on streams of its own."""
    bare, full = float("inf"), (float("inf"), 0.0)
    async with get_session().create_client("kinesis", endpoint_url=endpoint) as kinesis:
        for run in range(runs):
            await fill(kinesis, f"bare-{run}", records, shards)
            bare = min(bare, await run_bare(kinesis, f"bare-{run}", records, shards, workdir))
            await fill(kinesis, f"pipelined-{run}", records, shards)
            full = min(full, await run_pipelined(kinesis, f"pipelined-{run}", records, shards, workdir))
    return bare, full


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5, help="best of this many runs each")
    args = parser.parse_args()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # The daemon's START/END/REPORT lines would make the terminal the bottleneck.
    setup_logging("WARNING", "text", stream=open(os.devnull, "w"))  # noqa: SIM115
    port = free_port()
    moto = start_moto(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            (workdir / "noop.py").write_text(HANDLER)
            bare, (full, startup) = asyncio.run(
                benchmark(f"http://127.0.0.1:{port}", args.records, args.shards, args.runs, workdir)
            )
    finally:
        moto.terminate()
        moto.wait(10)
    print(f"{args.records:,} records on {args.shards} shards (moto in its own process), best of {args.runs}")
    print(f"bare get_records loop : {bare:6.2f} s  ({args.records / bare:8,.0f} records/s)")
    print(
        f"pipelined             : {full:6.2f} s  ({args.records / full:8,.0f} records/s; "
        f"daemon start-up {startup:.2f} s of it)"
    )
    print(f"ratio                 : {bare / full:.2f}  (bare time / pipelined time; 1.0 = no overhead)")


if __name__ == "__main__":
    main()
