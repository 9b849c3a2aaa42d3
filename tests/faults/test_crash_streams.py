"""kill -9 in a loop on a Kinesis stream: nothing is lost, and each kill redelivers at most one batch per
shard (the batch in flight), because a shard starts its next batch only once the last one's checkpoint is
on disk. Prints lost, duplicated and the bound."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio

from tests.sources.streams.support import clients
from tests.support import DaemonProcess, read_records, wait_until, write_config

# `make faults-long` multiplies the counts (PIPELINED_FAULTS_SCALE) for release checks.
SCALE = int(os.environ.get("PIPELINED_FAULTS_SCALE", "1"))
SHARDS = 2
RECORDS = 400 * SCALE
BATCH = 10
KILLS = 4 * SCALE


@pytest_asyncio.fixture(loop_scope="function")
async def kinesis(aws: str) -> AsyncIterator[Any]:
    aws_clients = clients(aws)
    yield await aws_clients.client("kinesis")
    await aws_clients.close()


def delivered(records_file: Path) -> list[str]:
    """shard:sequence of every record handed to the handler (moto numbers each shard from 1)."""
    return [r["eventID"] for line in read_records(records_file) for r in line["records"]]


async def test_kill_9_loop_on_a_stream_loses_nothing_and_redelivers_at_most_a_batch_per_shard(
    tmp_path: Path, kinesis: Any, daemon: Callable[..., DaemonProcess]
) -> None:
    await kinesis.create_stream(StreamName="events", ShardCount=SHARDS)
    sent: list[str] = []
    for start in range(0, RECORDS, 100):
        entries = [
            {"Data": json.dumps({"n": n}).encode(), "PartitionKey": f"pk-{n}"}
            for n in range(start, start + 100)
        ]
        response = await kinesis.put_records(StreamName="events", Records=entries)
        sent += [f"{r['ShardId']}:{r['SequenceNumber']}" for r in response["Records"]]
    event = {
        "type": "kinesis",
        "name": "src",
        "stream": "events",
        "starting_position": "TRIM_HORIZON",
        "batch_size": BATCH,
    }
    config = write_config(tmp_path, {"fn": {"handler": "stream_handlers.record", "events": [event]}})
    records_file = tmp_path / "records.jsonl"
    env = {"RECORD_FILE": records_file, "AWS_MAX_ATTEMPTS": 1, "SLEEP_SECONDS": "0"}
    for kill in range(KILLS):
        process = daemon(config, env)
        target = (kill + 1) * RECORDS // (KILLS + 2)
        wait_until(lambda t=target: len(set(delivered(records_file))) >= t, timeout=30)  # type: ignore[misc]
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    daemon(config, env)
    wait_until(lambda: set(delivered(records_file)) >= set(sent), timeout=60)
    seen = Counter(delivered(records_file))
    lost = len(set(sent) - set(seen))
    duplicated = sum(n - 1 for n in seen.values())
    bound = KILLS * SHARDS * BATCH
    print(
        f"\nkinesis kill -9 x{KILLS}: {RECORDS} records, lost {lost}, duplicated {duplicated} (bound {bound})"
    )
    assert lost == 0
    assert duplicated <= bound
