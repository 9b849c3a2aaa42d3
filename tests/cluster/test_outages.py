"""A member paused past its lease is fenced and gives its shards up; the database away for a while
makes members unready, not dead, and nothing is lost once it is back."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import boto3

from tests.cluster.test_members import LEASE, SCALE, delivered, member_config, shard_leases
from tests.faults.proxy import FaultyProxy
from tests.support import DaemonProcess, until, wait_until

EVENT = {
    "type": "kinesis",
    "name": "src",
    "stream": "events",
    "starting_position": "TRIM_HORIZON",
    "batch_size": 10,
}
OUTAGE = 10.0 * SCALE


def put(kinesis: object, first: int, count: int) -> list[tuple[str, int]]:
    entries = [
        {"Data": json.dumps({"n": n}).encode(), "PartitionKey": f"pk-{n}"}
        for n in range(first, first + count)
    ]
    response = kinesis.put_records(StreamName="events", Records=entries)  # type: ignore[attr-defined]
    return [(r["ShardId"], int(r["SequenceNumber"])) for r in response["Records"]]


def start_members(
    tmp_path: Path, url: str, daemon: Callable[..., DaemonProcess], count: int, sleep: str = "0.05"
) -> tuple[list[DaemonProcess], list[Path]]:
    files = [tmp_path / f"m{i}" / "records.jsonl" for i in range(count)]
    fn = {"fn": {"handler": "stream_handlers.record", "events": [EVENT]}}
    members = [
        daemon(
            member_config(tmp_path / f"m{i}", url, f"m{i}", fn),
            {"RECORD_FILE": files[i], "SLEEP_SECONDS": sleep},
            wait_ready=False,
        )
        for i in range(count)
    ]
    for m in members:
        wait_until(m.ready, timeout=30)
    return members, files


def test_a_member_paused_past_its_lease_is_fenced_and_gives_its_shards_up(
    tmp_path: Path, aws: str, pg_url: str, daemon: Callable[..., DaemonProcess]
) -> None:
    kinesis = boto3.client("kinesis", endpoint_url=aws)
    kinesis.create_stream(StreamName="events", ShardCount=2)
    # Batches that take a while: the pause lands while one is in flight, whose checkpoint comes after it.
    members, files = start_members(tmp_path, pg_url, daemon, 2, sleep="0.3")
    wait_until(lambda: [shard_leases(m) for m in members] == [1, 1], timeout=30)
    sent = put(kinesis, 0, 400)
    wait_until(lambda: len(delivered(files)) >= 40, timeout=30)
    paused, other = members
    paused.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: shard_leases(other) == 2, timeout=LEASE + 10)
    finally:
        paused.send_signal(signal.SIGCONT)
    # Its batch in flight settles after the pause: the checkpoint is refused, the reader stops.
    wait_until(lambda: paused.metric("pipelined_checkpoints_fenced_total") >= 1, timeout=20)
    assert "lease is gone" in paused.logs() or "no longer holds the shard's lease" in paused.logs()
    wait_until(lambda: set(delivered(files)) >= set(sent), timeout=60)


def test_the_database_away_makes_members_unready_and_they_recover_without_losing_records(
    tmp_path: Path, aws: str, pg_url: str, daemon: Callable[..., DaemonProcess]
) -> None:
    import asyncio

    async def scenario() -> None:
        parts = urlsplit(pg_url)
        proxy = FaultyProxy(parts.port or 5432)
        await proxy.start()
        url = f"postgresql://{parts.username}@127.0.0.1:{proxy.port}{parts.path}"
        kinesis = boto3.client("kinesis", endpoint_url=aws)
        kinesis.create_stream(StreamName="events", ShardCount=2)
        members, files = await asyncio.to_thread(start_members, tmp_path, url, daemon, 2)
        sent = put(kinesis, 0, 200)
        await until(lambda: len(set(delivered(files))) >= 50, timeout=30)
        await proxy.set_mode("refuse")
        begun = time.monotonic()
        await until(lambda: all(m.get("/readyz")[0] == 503 for m in members), timeout=OUTAGE)
        sent += put(kinesis, 200, 200)  # arrives while the database is away
        await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - begun)))
        assert all(m.process is not None and m.process.poll() is None for m in members), "a member exited"
        await proxy.set_mode("pass")
        await until(lambda: all(m.get("/readyz")[0] == 200 for m in members), timeout=30)
        await until(lambda: set(delivered(files)) >= set(sent), timeout=60)
        for m in members:  # while the database is reachable: they release their leases at once
            await asyncio.to_thread(m.stop)
        await proxy.stop()

    asyncio.run(scenario())
