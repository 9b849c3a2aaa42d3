"""Kinesis sources against moto: record shape, lineage on real resharding, failures, shutdown, CLI."""

from __future__ import annotations

import base64
import json
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from pipelined.core.timestamps import iso_millis
from tests.sources.streams.support import (
    Pipeline,
    clients,
    data_of,
    kinesis_config,
    pipeline,
    stored_checkpoints,
)
from tests.support import DaemonProcess, read_records, run_cli, until, wait_until, write_config

ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/events"


@pytest_asyncio.fixture(loop_scope="function")
async def kinesis(aws: str) -> AsyncIterator[Any]:
    """A Kinesis client on a clean moto."""
    aws_clients = clients(aws)
    yield await aws_clients.client("kinesis")
    await aws_clients.close()


async def put(kinesis: Any, *bodies: Any, key: Callable[[int], str] = lambda i: f"pk-{i}") -> list[str]:
    """Write records (JSON, or raw bytes) in order; returns their sequence numbers."""
    entries = [
        {"Data": b if isinstance(b, bytes) else json.dumps(b).encode(), "PartitionKey": key(i)}
        for i, b in enumerate(bodies)
    ]
    response = await kinesis.put_records(StreamName="events", Records=entries)
    return [r["SequenceNumber"] for r in response["Records"]]


async def checkpoint_is(p: Pipeline, shard: str, value: str) -> bool:
    return (await p.checkpoints()).get(shard) == value


def shard_of(record: dict[str, Any]) -> str:
    return str(record["eventID"].split(":")[0])


async def test_records_arrive_in_lambdas_kinesis_shape_and_in_order(tmp_path: Path, kinesis: Any) -> None:
    await kinesis.create_stream(StreamName="events", ShardCount=1)
    before = time.time()
    seqs = await put(kinesis, {"n": 1}, b"\x00\xffnot json", {"n": 3})
    config = kinesis_config("events", starting_position="TRIM_HORIZON")
    async with pipeline(tmp_path, config, "record", kinesis.meta.endpoint_url) as p:
        await until(lambda: checkpoint_is(p, "shardId-000000000000", seqs[-1]), timeout=10)
        age = p.metric("pipelined_iterator_age_seconds")
    [call] = p.calls
    first = call[0]
    arrival = first["kinesis"].pop("approximateArrivalTimestamp")
    assert isinstance(arrival, float) and before - 1 <= arrival <= time.time()
    assert first == {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "pk-0",
            "sequenceNumber": seqs[0],
            "data": base64.b64encode(b'{"n": 1}').decode(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{seqs[0]}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::000000000000:role/fn",
        "awsRegion": "us-east-1",
        "eventSourceARN": ARN,
    }
    assert base64.b64decode(call[1]["kinesis"]["data"]) == b"\x00\xffnot json"
    assert [r["kinesis"]["sequenceNumber"] for r in call] == seqs
    assert 0 < age < 30


async def test_filter_patterns_see_decoded_data_and_filtered_records_move_the_checkpoint(
    tmp_path: Path, kinesis: Any
) -> None:
    await kinesis.create_stream(StreamName="events", ShardCount=1)
    seqs = await put(kinesis, {"kind": "order"}, {"kind": "noise"}, b"plain text", {"kind": "noise"})
    config = kinesis_config(
        "events", starting_position="TRIM_HORIZON", filter_patterns=[{"data": {"kind": ["order"]}}]
    )
    async with pipeline(tmp_path, config, "record", kinesis.meta.endpoint_url) as p:
        await until(lambda: checkpoint_is(p, "shardId-000000000000", seqs[-1]), timeout=10)
        assert p.metric("pipelined_events_total", outcome="filtered") == 3
    assert [data_of(r) for r in p.delivered()] == [{"kind": "order"}]


# --- lineage on real resharding --------------------------------------------------------------------------


# moto reshards the listing faithfully (parents closed, children naming them) but keeps routing writes
# to the first shard whose hash range matches, closed or not, and copies a merged parent's records
# into the child. So these tests write before resharding only, and expect those copies.


async def test_a_live_split_finishes_the_parent_then_starts_its_children(
    tmp_path: Path, kinesis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "pipelined")
    await kinesis.create_stream(StreamName="events", ShardCount=1)
    config = kinesis_config("events", starting_position="TRIM_HORIZON", batch_size=5)
    async with pipeline(tmp_path, config, "record", kinesis.meta.endpoint_url) as p:
        seqs = await put(kinesis, *({"n": i} for i in range(10)))
        await until(lambda: checkpoint_is(p, "shardId-000000000000", seqs[-1]), timeout=10)
        await kinesis.update_shard_count(
            StreamName="events", TargetShardCount=2, ScalingType="UNIFORM_SCALING"
        )
        await until(lambda: checkpoint_is(p, "shardId-000000000000", "SHARD_END"), timeout=10)
        await until(lambda: "reading shard shardId-000000000002" in caplog.text, timeout=10)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("pipelined")]
    finished = messages.index("fn/src: shard shardId-000000000000 finished")
    children = [
        i for i, m in enumerate(messages) if m.startswith("fn/src: reading shard shardId-00000000000")
    ]
    assert [messages[i].rsplit(" ", 1)[-1] for i in children] == ["TRIM_HORIZON"] * 3
    assert children[0] < finished < children[1] < children[2]
    assert [r["kinesis"]["sequenceNumber"] for r in p.delivered()] == seqs


async def test_merged_parents_are_read_to_their_end_before_the_child_starts(
    tmp_path: Path, kinesis: Any
) -> None:
    await kinesis.create_stream(StreamName="events", ShardCount=2)
    before = await put(kinesis, *({"n": i} for i in range(20)))
    await kinesis.update_shard_count(StreamName="events", TargetShardCount=1, ScalingType="UNIFORM_SCALING")
    shards = (await kinesis.list_shards(StreamName="events"))["Shards"]
    [child] = [s["ShardId"] for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
    config = kinesis_config("events", starting_position="TRIM_HORIZON", batch_size=7)
    async with pipeline(tmp_path, config, "record", kinesis.meta.endpoint_url) as p:
        await until(lambda: sum(shard_of(r) == child for r in p.delivered()) == 20, timeout=15)
        stored = await p.checkpoints()
    assert stored["shardId-000000000000"] == stored["shardId-000000000001"] == "SHARD_END"
    order = [shard_of(r) for r in p.delivered()]
    from_parents = [r["kinesis"]["sequenceNumber"] for r in p.delivered() if shard_of(r) != child]
    assert sorted(from_parents) == sorted(before) and len(from_parents) == 20
    assert max(i for i, s in enumerate(order) if s != child) < order.index(child)


# --- failures ------------------------------------------------------------------------------------------


async def test_partial_failure_retries_from_the_lowest_reported_sequence_number(
    tmp_path: Path, kinesis: Any
) -> None:
    await kinesis.create_stream(StreamName="events", ShardCount=1)
    seqs = await put(kinesis, *({"n": i, "fail": i in (2, 4)} for i in range(6)))
    config = kinesis_config("events", starting_position="TRIM_HORIZON", report_batch_item_failures=True)
    async with pipeline(tmp_path, config, "report_once", kinesis.meta.endpoint_url) as p:
        await until(lambda: checkpoint_is(p, "shardId-000000000000", seqs[-1]), timeout=10)
    assert [[r["kinesis"]["sequenceNumber"] for r in call] for call in p.calls] == [seqs, seqs[2:]]


async def test_exhausted_retries_send_the_batch_to_the_destination_and_the_shard_moves_on(
    tmp_path: Path, kinesis: Any
) -> None:
    await kinesis.create_stream(StreamName="events", ShardCount=1)
    seqs = await put(kinesis, {"n": 0}, {"n": 1})
    config = kinesis_config("events", starting_position="TRIM_HORIZON", maximum_retry_attempts=1)
    async with pipeline(tmp_path, config, "fail", kinesis.meta.endpoint_url) as p:
        await until(lambda: checkpoint_is(p, "shardId-000000000000", seqs[-1]), timeout=10)
        [entry] = await p.state.dead_letters.list()
    assert len(p.calls) == 2
    assert entry.failure_record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert entry.failure_record["requestContext"]["approximateInvokeCount"] == 2
    assert entry.failure_record["KinesisBatchInfo"]["batchSize"] == 2


# --- the daemon ----------------------------------------------------------------------------------------


def daemon_config(tmp_path: Path, handler: str, **source: Any) -> Path:
    event = {
        "type": "kinesis",
        "name": "src",
        "stream": "events",
        "starting_position": "TRIM_HORIZON",
        **source,
    }
    return write_config(tmp_path, {"fn": {"handler": f"stream_handlers.{handler}", "events": [event]}})


def start(daemon: Callable[..., DaemonProcess], config: Path, **env: Any) -> DaemonProcess:
    return daemon(config, {"RECORD_FILE": config.parent / "records.jsonl", "AWS_MAX_ATTEMPTS": 1, **env})


async def test_poison_record_with_bisect_alone_reaches_the_sqlite_destination(
    tmp_path: Path, kinesis: Any, daemon: Callable[..., DaemonProcess]
) -> None:
    await kinesis.create_stream(StreamName="events", ShardCount=1)
    seqs = await put(kinesis, *({"n": i, "poison": i == 5} for i in range(8)))
    config = daemon_config(
        tmp_path, "poison", batch_size=8, bisect_batch_on_function_error=True, maximum_retry_attempts=0
    )
    process = start(daemon, config)
    wait_until(lambda: stored_checkpoints(tmp_path / "state").get("shardId-000000000000") == seqs[-1], 15)
    process.stop()
    listing = run_cli("dlq", "list", "-c", str(config))
    assert listing.stdout.splitlines()[-1] == "1 parked event(s)"
    shown = json.loads(run_cli("dlq", "show", "1", "-c", str(config)).stdout)
    assert [r["kinesis"]["sequenceNumber"] for r in shown["event"]["Records"]] == [seqs[5]]
    record = shown["failureRecord"]
    arrival = shown["event"]["Records"][0]["kinesis"]["approximateArrivalTimestamp"]
    assert set(record) == {"requestContext", "responseContext", "version", "timestamp", "KinesisBatchInfo"}
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestContext"]["functionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:fn"
    # The invocation that failed last, by the request id of its START line.
    assert f"START RequestId: {record['requestContext']['requestId']} Version" in process.logs()
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["version"] == "1.0"
    assert record["KinesisBatchInfo"] == {
        "shardId": "shardId-000000000000",
        "startSequenceNumber": seqs[5],
        "endSequenceNumber": seqs[5],
        "approximateArrivalOfFirstRecord": iso_millis(arrival),
        "approximateArrivalOfLastRecord": iso_millis(arrival),
        "batchSize": 1,
        "streamArn": ARN,
    }
    delivered_ok = {
        data_of(r)["n"] for line in read_records(tmp_path / "records.jsonl") for r in line["records"]
    }
    assert delivered_ok == set(range(8))


async def test_sigterm_finishes_the_batch_in_flight_and_writes_its_checkpoint(
    tmp_path: Path, kinesis: Any, daemon: Callable[..., DaemonProcess]
) -> None:
    await kinesis.create_stream(StreamName="events", ShardCount=1)
    seqs = await put(kinesis, *({"n": i} for i in range(10)))
    config = daemon_config(tmp_path, "record", batch_size=5)
    records = tmp_path / "records.jsonl"
    process = start(daemon, config, SLEEP_SECONDS=1.5)
    wait_until(lambda: read_records(records), 15)  # the first batch is in its handler
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0
    assert stored_checkpoints(tmp_path / "state") == {"shardId-000000000000": seqs[4]}
    assert "left unfinished" not in process.logs()
    start(daemon, config)
    wait_until(lambda: stored_checkpoints(tmp_path / "state")["shardId-000000000000"] == seqs[-1], 15)
    delivered = [r["kinesis"]["sequenceNumber"] for line in read_records(records) for r in line["records"]]
    assert delivered == seqs


async def test_checkpoints_cli_lists_and_resets_a_source(
    tmp_path: Path, kinesis: Any, daemon: Callable[..., DaemonProcess]
) -> None:
    await kinesis.create_stream(StreamName="events", ShardCount=1)
    seqs = await put(kinesis, *({"n": i} for i in range(3)))
    config = daemon_config(tmp_path, "record")
    process = start(daemon, config)
    wait_until(lambda: stored_checkpoints(tmp_path / "state").get("shardId-000000000000") == seqs[-1], 15)
    refused = run_cli("checkpoints", "reset", "fn/src", "-c", str(config))
    assert refused.returncode == 2 and "stop it before resetting" in refused.stderr
    process.stop()
    listing = run_cli("checkpoints", "list", "-c", str(config))
    assert listing.returncode == 0, listing.stderr
    row, count = listing.stdout.splitlines()
    assert row.split("\t")[:4] == ["fn/src", ARN, "shardId-000000000000", seqs[-1]]
    assert count == "1 checkpoint(s)"
    unknown = run_cli("checkpoints", "reset", "fn/nope", "-c", str(config))
    assert unknown.returncode == 2 and "stream sources: fn/src" in unknown.stderr
    reset = run_cli("checkpoints", "reset", "fn/src", "--to", seqs[1], "-c", str(config))
    assert reset.returncode == 0, reset.stderr
    start(daemon, config)
    wait_until(lambda: len(read_records(tmp_path / "records.jsonl")) == 2, 15)
    replayed = read_records(tmp_path / "records.jsonl")[-1]["records"]
    assert [r["kinesis"]["sequenceNumber"] for r in replayed] == seqs[1:]
