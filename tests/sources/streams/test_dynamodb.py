"""DynamoDB stream sources: Lambda's record shape and restarts on moto, lineage on recorded responses."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import pytest_asyncio
from botocore.parsers import create_parser

from pipelined.core.timestamps import iso_seconds
from pipelined.errors import SourceError
from pipelined.sources.streams.dynamodb import DynamoDBStreamAdapter
from tests.sources.streams.support import (
    Pipeline,
    clients,
    dynamodb_config,
    pipeline,
    stored_checkpoints,
)
from tests.support import DaemonProcess, read_records, run_cli, until, wait_until, write_config

FIXTURE = Path(__file__).parent / "fixtures" / "dynamodb_multishard_stream.json"


class RecordedStreams:
    """The DynamoDB Streams API replayed from recorded wire responses, parsed by botocore's own parser."""

    def __init__(self, fixture: dict[str, Any]) -> None:
        self.fixture = fixture
        self.model = botocore.session.get_session().get_service_model("dynamodbstreams")
        self.parser = create_parser(self.model.metadata["protocol"])
        self.opened: list[str] = []

    def _parse(self, operation: str, body: dict[str, Any]) -> Any:
        response = {"status_code": 200, "headers": {}, "body": json.dumps(body).encode()}
        return self.parser.parse(response, self.model.operation_model(operation).output_shape)

    def _closed(self, shard_id: str) -> bool:
        for page in self.fixture["DescribeStream"]:
            for shard in page["response"]["StreamDescription"]["Shards"]:
                if shard["ShardId"] == shard_id:
                    return "EndingSequenceNumber" in shard["SequenceNumberRange"]
        raise AssertionError(shard_id)

    async def describe_stream(self, **request: Any) -> Any:
        [page] = [p for p in self.fixture["DescribeStream"] if p["request"] == request]
        return self._parse("DescribeStream", page["response"])

    async def get_shard_iterator(self, **request: Any) -> Any:
        shard_id, kind = request["ShardId"], request["ShardIteratorType"]
        self.opened.append(shard_id)
        seqs = [r["dynamodb"]["SequenceNumber"] for r in self.fixture["GetRecords"][shard_id]]
        index = {"TRIM_HORIZON": 0, "LATEST": len(seqs)}.get(kind)
        if index is None:
            index = seqs.index(request["SequenceNumber"]) + (kind == "AFTER_SEQUENCE_NUMBER")
        return {"ShardIterator": f"{shard_id}|{index}"}

    async def get_records(self, **request: Any) -> Any:
        shard_id, _, index_text = request["ShardIterator"].partition("|")
        records = self.fixture["GetRecords"][shard_id][int(index_text) :][: request["Limit"]]
        end = int(index_text) + len(records)
        body: dict[str, Any] = {"Records": records}
        if not (self._closed(shard_id) and end == len(self.fixture["GetRecords"][shard_id])):
            body["NextShardIterator"] = f"{shard_id}|{end}"
        return self._parse("GetRecords", body)


def recorded_config(**options: Any) -> Any:
    from pipelined.config import DynamoDBStreamSource

    arn = json.loads(FIXTURE.read_text())["DescribeStream"][0]["request"]["StreamArn"]
    return DynamoDBStreamSource(type="dynamodb_stream", name="src", stream_arn=arn, **options)


def recorded(api: RecordedStreams) -> Callable[[Any], DynamoDBStreamAdapter]:
    return lambda _: DynamoDBStreamAdapter(None, stream_arn=recorded_config().stream_arn, streams_api=api)


def sequence(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


# --- lineage on a recorded multi-shard stream --------------------------------------------------------


async def test_a_recorded_multi_shard_stream_is_read_parents_before_children(tmp_path: Path) -> None:
    fixture = json.loads(FIXTURE.read_text())
    api = RecordedStreams(fixture)
    by_shard = {s: [sequence(r) for r in rs] for s, rs in fixture["GetRecords"].items()}
    total = sum(map(len, by_shard.values()))
    async with pipeline(tmp_path, recorded_config(batch_size=2), "record", adapter=recorded(api)) as p:
        await until(lambda: len(p.delivered()) == total, timeout=10)
        await until(lambda: _all_settled(p, by_shard), timeout=5)
        stored = await p.checkpoints()
    order = [sequence(r) for r in p.delivered()]
    assert sorted(order) == sorted(s for seqs in by_shard.values() for s in seqs)
    shards = {
        s["ShardId"]: s
        for page in fixture["DescribeStream"]
        for s in page["response"]["StreamDescription"]["Shards"]
    }
    for shard_id, shard in shards.items():
        parent = shard.get("ParentShardId")
        if parent in by_shard:
            assert max(map(order.index, by_shard[parent])) < min(map(order.index, by_shard[shard_id])), (
                shard_id
            )
            assert api.opened.index(parent) < api.opened.index(shard_id)
        closed = "EndingSequenceNumber" in shard["SequenceNumberRange"]
        assert stored[shard_id] == ("SHARD_END" if closed else by_shard[shard_id][-1])
    # The orphan's parent expired long ago: it was opened with the first shards, not after a lineage.
    assert api.opened.index("shardId-00000001714670122699-a7b8c9d0") < api.opened.index(
        "shardId-00000001714655722511-b2c3d4e5"
    )


async def _all_settled(p: Pipeline, by_shard: dict[str, list[str]]) -> bool:
    stored = await p.checkpoints()
    return all(stored.get(s) in ("SHARD_END", seqs[-1]) for s, seqs in by_shard.items())


async def test_recorded_records_keep_lambdas_shape_binary_and_nested_values(tmp_path: Path) -> None:
    fixture = json.loads(FIXTURE.read_text())
    api = RecordedStreams(fixture)
    total = sum(map(len, fixture["GetRecords"].values()))
    async with pipeline(tmp_path, recorded_config(), "record", adapter=recorded(api)) as p:
        await until(lambda: len(p.delivered()) == total, timeout=10)
    records = {sequence(r): r for r in p.delivered()}
    wire = fixture["GetRecords"]["shardId-00000001714641322480-a1b2c3d4"][0]
    assert records["100000000000000000101"] == {
        "eventID": wire["eventID"],
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        # The wire's images, numbers as exact strings, binary as base64, sets and nesting intact.
        "dynamodb": wire["dynamodb"],
        "eventSourceARN": recorded_config().stream_arn,
    }
    ttl_delete = records["200000000000000000102"]
    assert ttl_delete["eventName"] == "REMOVE"
    assert ttl_delete["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


async def test_records_older_than_maximum_record_age_reach_the_destination_uninvoked(tmp_path: Path) -> None:
    fixture = json.loads(FIXTURE.read_text())
    api = RecordedStreams(fixture)
    config = recorded_config(maximum_record_age="1m", batch_size=10)
    async with pipeline(tmp_path, config, "record", adapter=recorded(api)) as p:
        total = sum(map(len, fixture["GetRecords"].values()))
        await until(lambda: p.metric("pipelined_events_total", outcome="dead_lettered") == total, timeout=10)
        entries = await p.state.dead_letters.list()
    assert p.calls == []
    root = next(e for e in entries if e.failure_record["DDBStreamBatchInfo"]["shardId"].endswith("a1b2c3d4"))
    wire = fixture["GetRecords"]["shardId-00000001714641322480-a1b2c3d4"]
    assert root.failure_record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert root.failure_record["DDBStreamBatchInfo"] == {
        "shardId": "shardId-00000001714641322480-a1b2c3d4",
        "startSequenceNumber": "100000000000000000101",
        "endSequenceNumber": "100000000000000000103",
        "approximateArrivalOfFirstRecord": "2024-05-02T09:16:40Z",
        "approximateArrivalOfLastRecord": iso_seconds(wire[-1]["dynamodb"]["ApproximateCreationDateTime"]),
        "batchSize": 3,
        "streamArn": recorded_config().stream_arn,
    }
    assert [r["dynamodb"]["SequenceNumber"] for r in root.event["Records"]] == [sequence(r) for r in wire]


# --- moto ------------------------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="function")
async def dynamodb(aws: str) -> AsyncIterator[Any]:
    """A DynamoDB client on a clean moto, with table "orders" streaming NEW_AND_OLD_IMAGES."""
    aws_clients = clients(aws)
    client = await aws_clients.client("dynamodb")
    await client.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    yield client
    await aws_clients.close()


async def test_put_update_delete_arrive_as_insert_modify_remove_in_lambdas_shape(
    tmp_path: Path, dynamodb: Any
) -> None:
    key = {"pk": {"S": "order-1"}, "sk": {"N": "1"}}
    item = {
        **key,
        "total": {"N": "12.50"},
        "blob": {"B": b"\x00\x01\x02\xff"},
        "lines": {"L": [{"M": {"sku": {"S": "X-1"}, "qty": {"N": "3"}, "raw": {"B": b"\x10"}}}]},
        "tags": {"SS": ["a", "b"]},
    }
    item_json = {
        **key,
        "total": {"N": "12.50"},
        "blob": {"B": "AAEC/w=="},
        "lines": {"L": [{"M": {"sku": {"S": "X-1"}, "qty": {"N": "3"}, "raw": {"B": "EA=="}}}]},
        "tags": {"SS": ["a", "b"]},
    }
    await dynamodb.put_item(TableName="orders", Item=item)
    await dynamodb.update_item(
        TableName="orders",
        Key=key,
        UpdateExpression="SET #t = :t",
        ExpressionAttributeNames={"#t": "total"},
        ExpressionAttributeValues={":t": {"N": "13"}},
    )
    await dynamodb.delete_item(TableName="orders", Key=key)
    arn = (await dynamodb.describe_table(TableName="orders"))["Table"]["LatestStreamArn"]
    async with pipeline(tmp_path, dynamodb_config("orders"), "record", dynamodb.meta.endpoint_url) as p:
        await until(lambda: len(p.delivered()) == 3, timeout=10)
    insert, modify, remove = p.delivered()
    assert [r["eventName"] for r in (insert, modify, remove)] == ["INSERT", "MODIFY", "REMOVE"]
    for record in (insert, modify, remove):
        assert set(record) == {
            "eventID",
            "eventName",
            "eventVersion",
            "eventSource",
            "awsRegion",
            "dynamodb",
            "eventSourceARN",
        }
        assert record["eventVersion"] == "1.1" and record["eventSource"] == "aws:dynamodb"
        assert record["awsRegion"] == "us-east-1" and record["eventSourceARN"] == arn
        assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
        assert record["dynamodb"]["Keys"] == key
        assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert insert["dynamodb"]["NewImage"] == item_json and "OldImage" not in insert["dynamodb"]
    assert modify["dynamodb"]["OldImage"] == item_json
    assert modify["dynamodb"]["NewImage"] == {**item_json, "total": {"N": "13"}}
    assert remove["dynamodb"]["OldImage"] == {**item_json, "total": {"N": "13"}}
    assert "NewImage" not in remove["dynamodb"]
    seqs = [int(sequence(r)) for r in (insert, modify, remove)]
    assert seqs == sorted(seqs)


async def test_a_table_without_a_stream_is_a_clear_start_error(tmp_path: Path, dynamodb: Any) -> None:
    await dynamodb.create_table(
        TableName="plain",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(SourceError, match="table plain has no stream"):
        async with pipeline(tmp_path, dynamodb_config("plain"), "record", dynamodb.meta.endpoint_url):
            pass


# --- the daemon ------------------------------------------------------------------------------------------


def daemon_config(tmp_path: Path, handler: str, **source: Any) -> Path:
    event = {"type": "dynamodb_stream", "name": "src", "table": "orders", **source}
    return write_config(tmp_path, {"fn": {"handler": f"stream_handlers.{handler}", "events": [event]}})


async def put_items(dynamodb: Any, count: int, **extra: Any) -> None:
    for n in range(count):
        item = {"pk": {"S": f"order-{n}"}, "sk": {"N": str(n)}, "n": {"N": str(n)}}
        for name, value in extra.get(str(n), {}).items():
            item[name] = value
        await dynamodb.put_item(TableName="orders", Item=item)


def delivered(path: Path) -> list[tuple[str, int]]:
    """(run, n) for every record delivered, in order; run is the RUN_ID the daemon was started with."""
    return [
        (line["run"], int(r["dynamodb"]["NewImage"]["n"]["N"]))
        for line in read_records(path)
        for r in line["records"]
    ]


async def test_kill_9_mid_run_resumes_after_the_last_checkpoint(
    tmp_path: Path, dynamodb: Any, daemon: Callable[..., DaemonProcess]
) -> None:
    await put_items(dynamodb, 40)
    config = daemon_config(tmp_path, "record", batch_size=4)
    records = tmp_path / "records.jsonl"
    env = {"RECORD_FILE": records, "AWS_MAX_ATTEMPTS": 1}
    first = daemon(config, {**env, "SLEEP_SECONDS": 0.1, "RUN_ID": "first"})
    wait_until(lambda: len(delivered(records)) >= 12, 15)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    checkpoint = stored_checkpoints(tmp_path / "state")
    [shard] = checkpoint
    second = daemon(config, {**env, "RUN_ID": "second"})
    wait_until(lambda: {n for _, n in delivered(records)} == set(range(40)), 15)
    second.stop()
    before = [n for run, n in delivered(records) if run == "first"]
    after = [n for run, n in delivered(records) if run == "second"]
    assert before == list(range(len(before))) and after == list(range(after[0], 40))
    # The restart begins right after the checkpoint the killed daemon left on disk ...
    arn = (await dynamodb.describe_table(TableName="orders"))["Table"]["LatestStreamArn"]
    reader = clients(dynamodb.meta.endpoint_url)
    streams = await reader.client("dynamodbstreams")
    iterator = await streams.get_shard_iterator(
        StreamArn=arn,
        ShardId=shard,
        ShardIteratorType="AFTER_SEQUENCE_NUMBER",
        SequenceNumber=checkpoint[shard],
    )
    next_record = (await streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1))["Records"][0]
    assert int(next_record["dynamodb"]["NewImage"]["n"]["N"]) == after[0]
    # ... so only what was in flight when it died is delivered twice: at most a batch (and a commit window).
    await reader.close()
    assert len(before) - after[0] <= 2 * 4


async def test_poison_record_with_bisect_alone_reaches_the_destination_with_ddb_batch_info(
    tmp_path: Path, dynamodb: Any, daemon: Callable[..., DaemonProcess]
) -> None:
    await put_items(dynamodb, 6, **{"3": {"poison": {"BOOL": True}}})
    config = daemon_config(
        tmp_path, "poison", batch_size=6, bisect_batch_on_function_error=True, maximum_retry_attempts=0
    )
    records = tmp_path / "records.jsonl"
    process = daemon(config, {"RECORD_FILE": records, "AWS_MAX_ATTEMPTS": 1})
    wait_until(lambda: "dead_lettered" in process.get("/metrics")[1] and _dead_lettered(process) == 1, 15)
    process.stop()
    shown = run_cli("dlq", "show", "1", "-c", str(config), env={"AWS_MAX_ATTEMPTS": "1", **os.environ})
    entry = json.loads(shown.stdout)
    [poison] = entry["event"]["Records"]
    assert poison["dynamodb"]["NewImage"]["n"] == {"N": "3"}
    created = poison["dynamodb"]["ApproximateCreationDateTime"]
    info = entry["failureRecord"]["DDBStreamBatchInfo"]
    assert info == {
        "shardId": info["shardId"],
        "startSequenceNumber": poison["dynamodb"]["SequenceNumber"],
        "endSequenceNumber": poison["dynamodb"]["SequenceNumber"],
        "approximateArrivalOfFirstRecord": iso_seconds(created),
        "approximateArrivalOfLastRecord": iso_seconds(created),
        "batchSize": 1,
        "streamArn": poison["eventSourceARN"],
    }
    assert info["shardId"].startswith("shardId-")
    assert entry["failureRecord"]["requestContext"]["approximateInvokeCount"] == 1
    assert entry["failureRecord"]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert {n for _, n in delivered(records)} == set(range(6))


def _dead_lettered(process: DaemonProcess) -> float:
    return process.metric("pipelined_events_total", function="fn", source="src", outcome="dead_lettered")
