"""The AWS endpoint hangs or refuses connections: readiness goes down within seconds, comes back when it
recovers, and nothing is lost. Prints seconds to unready and to ready again, and lost messages."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.faults.proxy import FaultyProxy
from tests.sources.sqs.support import sqs_client
from tests.sources.streams.support import clients
from tests.support import DaemonProcess, read_records, until, write_config

Daemon = Callable[..., DaemonProcess]


@pytest_asyncio.fixture(loop_scope="function")
async def proxy(aws: str) -> AsyncIterator[FaultyProxy]:
    server = FaultyProxy(int(aws.rsplit(":", 1)[1]))
    await server.start()
    yield server
    await server.stop()


async def ready_status(process: DaemonProcess) -> int:
    return (await asyncio.to_thread(process.get, "/readyz"))[0]


async def outage(process: DaemonProcess, proxy: FaultyProxy, mode: str) -> tuple[float, float]:
    """Seconds until /readyz answers 503 once the endpoint hangs or refuses, and until 200 after."""
    started = time.monotonic()
    await proxy.set_mode(mode)
    await until(lambda: ready_status(process), timeout=1)  # answering at all
    await until(lambda: _is(ready_status(process), 503), timeout=15, message=f"unready while {mode}")
    unready = time.monotonic() - started
    await asyncio.sleep(1)
    restored = time.monotonic()
    await proxy.set_mode("pass")
    await until(lambda: _is(ready_status(process), 200), timeout=30, message="ready again")
    return unready, time.monotonic() - restored


async def _is(status: Any, expected: int) -> bool:
    return bool(await status == expected)


async def sqs_daemon(
    tmp_path: Path, daemon: Daemon, proxy: FaultyProxy, url: str, **function: Any
) -> tuple[DaemonProcess, Path]:
    """The daemon reading `url` through the proxy (two attempts per call), and its handler's record file."""
    records = tmp_path / "records.jsonl"
    entry = {
        "handler": "sqs_handlers.handler",
        "environment": {"RECORD_FILE": str(records)},
        "events": [{"type": "sqs", "queue": url}],
        **function,
    }
    config = write_config(tmp_path, {"fn": entry}, aws={"endpoint_url": proxy.url})
    process = await asyncio.to_thread(daemon, config, {"RECORD_FILE": records, "AWS_MAX_ATTEMPTS": 2})
    return process, records


@pytest.mark.parametrize("mode", ["hang", "refuse"])
async def test_an_sqs_endpoint_that_hangs_or_refuses_makes_the_daemon_unready_then_ready_and_loses_nothing(
    tmp_path: Path, aws: str, proxy: FaultyProxy, daemon: Daemon, mode: str
) -> None:
    sqs = sqs_client(aws)
    url = sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
    process, records = await sqs_daemon(tmp_path, daemon, proxy, url)
    for n in range(10):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
    unready, ready = await outage(process, proxy, mode)
    for n in range(10, 20):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))

    def handled() -> set[int]:
        return {
            json.loads(r["body"])["n"] for line in read_records(records) for r in line["event"]["Records"]
        }

    await until(lambda: handled() >= set(range(20)), timeout=40, message="every message handled")
    lost = len(set(range(20)) - handled())
    print(
        f"\nsqs endpoint {mode}: unready after {unready:.1f}s, ready {ready:.1f}s after recovery, lost {lost}"
    )
    assert unready < 8 and lost == 0


async def test_an_sqs_endpoint_that_hangs_while_a_batch_is_handled_makes_the_daemon_unready_within_seconds(
    tmp_path: Path, aws: str, proxy: FaultyProxy, daemon: Daemon
) -> None:
    # One poller (reserved_concurrency 1), and it holds the batch: no long poll waits beside it, so no
    # probe runs, and the batch's delete is the call that finds the endpoint hung. Unwatched, the
    # delete would fail only after its read timeout twice (AWS_MAX_ATTEMPTS 2), over 10 s.
    sqs = sqs_client(aws)
    url = sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    process, records = await sqs_daemon(tmp_path, daemon, proxy, url, reserved_concurrency=1)
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": 0, "sleep": 1}))

    def in_flight() -> bool:
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
        )
        return attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"

    await until(in_flight, timeout=15, message="the message received")
    unready, ready = await outage(process, proxy, "hang")
    await until(lambda: read_records(records), timeout=15, message="the message handled")
    print(
        f"\nsqs endpoint hang during a batch: unready after {unready:.1f}s, ready {ready:.1f}s after recovery"
    )
    assert unready < 8


async def test_a_kinesis_endpoint_that_hangs_makes_the_daemon_unready_within_seconds(
    tmp_path: Path, aws: str, proxy: FaultyProxy, daemon: Daemon
) -> None:
    aws_clients = clients(aws)
    kinesis = await aws_clients.client("kinesis")
    await kinesis.create_stream(StreamName="events", ShardCount=1)
    records = tmp_path / "records.jsonl"
    event = {"type": "kinesis", "name": "src", "stream": "events", "starting_position": "TRIM_HORIZON"}
    config = write_config(
        tmp_path,
        {"fn": {"handler": "stream_handlers.record", "events": [event]}},
        aws={"endpoint_url": proxy.url},
    )
    process = await asyncio.to_thread(daemon, config, {"RECORD_FILE": records, "AWS_MAX_ATTEMPTS": 2})
    before = [json.dumps({"n": n}).encode() for n in range(5)]
    await kinesis.put_records(StreamName="events", Records=[{"Data": d, "PartitionKey": "k"} for d in before])
    unready, ready = await outage(process, proxy, "hang")
    after = [json.dumps({"n": n}).encode() for n in range(5, 10)]
    await kinesis.put_records(StreamName="events", Records=[{"Data": d, "PartitionKey": "k"} for d in after])
    await aws_clients.close()

    def handled() -> int:
        return len(
            {r["kinesis"]["sequenceNumber"] for line in read_records(records) for r in line["records"]}
        )

    await until(lambda: handled() >= 10, timeout=40, message="every record handled")
    print(f"\nkinesis endpoint hang: unready after {unready:.1f}s, ready {ready:.1f}s after recovery, lost 0")
    assert unready < 8
