"""DynamoDB Streams for the stream engine: the API calls and Lambda's DynamoDB record shape."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from typing import Any

from pipelined.aws import AwsClients
from pipelined.config import DynamoDBStreamSource
from pipelined.core.identity import FunctionIdentity, parse_arn
from pipelined.core.records import Record
from pipelined.core.timestamps import iso_seconds
from pipelined.errors import SourceError
from pipelined.sources.streams.engine import StreamSource
from pipelined.sources.streams.model import (
    Page,
    Position,
    ShardInfo,
    StreamRecord,
    aws_call,
    epoch,
    shard_info,
)
from pipelined.state.interfaces import Checkpointer, Leases

# The event repeats the images in DynamoDB JSON, larger than SizeBytes; this keeps the 6 MB cap safe.
_SIZE_FACTOR = 2
_RECORD_OVERHEAD = 500


def _b64(value: bytes | str) -> str:
    return value if isinstance(value, str) else base64.b64encode(value).decode("ascii")


def attribute_value(value: Mapping[str, Any]) -> dict[str, Any]:
    """An AttributeValue as Lambda's event carries it: botocore's bytes back to base64, the rest as is."""
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": _b64(inner)}
    if kind == "BS":
        return {"BS": [_b64(b) for b in inner]}
    if kind == "M":
        return {"M": attributes(inner)}
    if kind == "L":
        return {"L": [attribute_value(v) for v in inner]}
    # S, N (a string, so numbers keep their exact digits), SS, NS, BOOL, NULL.
    return {kind: inner}


def attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    """A map of attribute names to AttributeValues, converted with `attribute_value`."""
    return {name: attribute_value(v) for name, v in item.items()}


class DynamoDBStreamAdapter:
    """DescribeStream, GetShardIterator and GetRecords on one DynamoDB stream.

    `streams_api` replaces the dynamodbstreams client (tests replay recorded responses through it).
    """

    batch_info_key = "DDBStreamBatchInfo"
    max_fetch = 1000
    # Lambda polls DynamoDB stream shards four times a second.
    idle_poll_interval = 0.25
    busy_poll_interval = 0.2
    # DynamoDB Streams has no AT_TIMESTAMP iterator; the engine emulates it.
    supports_at_timestamp = False

    def __init__(
        self,
        clients: AwsClients | None,
        *,
        table: str | None = None,
        stream_arn: str | None = None,
        filter_data: bool = False,
        streams_api: Any = None,
    ) -> None:
        if (table is None) == (stream_arn is None):
            raise ValueError("give exactly one of table or stream_arn")
        self._clients = clients
        self._table = table
        self._api = streams_api
        self._filter_data = filter_data
        self.stream_arn = stream_arn or ""
        self.region = parse_arn(stream_arn)["region"] if stream_arn else ""

    async def _streams(self) -> Any:
        if self._api is None:
            assert self._clients is not None
            self._api = await self._clients.client("dynamodbstreams")
        return self._api

    async def resolve(self) -> str:
        """The stream ARN: as configured, or the table's latest stream."""
        if self._table is not None:
            assert self._clients is not None
            dynamodb = await self._clients.client("dynamodb")
            try:
                table = (await dynamodb.describe_table(TableName=self._table))["Table"]
            except Exception as exc:
                raise SourceError(f"DynamoDB table {self._table}: {exc}") from exc
            arn = table.get("LatestStreamArn")
            if not arn:
                raise SourceError(
                    f"DynamoDB table {self._table} has no stream; enable one "
                    "(StreamSpecification) or configure stream_arn"
                )
            self.stream_arn = str(arn)
        self.region = parse_arn(self.stream_arn)["region"]
        return self.stream_arn

    async def list_shards(self) -> list[ShardInfo]:
        """Every listed shard, following LastEvaluatedShardId."""
        streams = await self._streams()
        shards: list[ShardInfo] = []
        request: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = (await aws_call(streams.describe_stream(**request)))["StreamDescription"]
            shards.extend(shard_info(s) for s in description.get("Shards", []))
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            request = {"StreamArn": self.stream_arn, "ExclusiveStartShardId": last}

    async def shard_iterator(self, shard_id: str, position: Position) -> str:
        """A shard iterator at `position` (never AT_TIMESTAMP, which the engine emulates)."""
        streams = await self._streams()
        request: dict[str, Any] = {
            "StreamArn": self.stream_arn,
            "ShardId": shard_id,
            "ShardIteratorType": position.kind,
        }
        if position.sequence is not None:
            request["SequenceNumber"] = position.sequence
        response = await aws_call(streams.get_shard_iterator(**request))
        return str(response["ShardIterator"])

    async def get_records(self, shard_id: str, iterator: str, limit: int) -> Page:
        """The next records of a shard, in Lambda's shape."""
        streams = await self._streams()
        response = await aws_call(streams.get_records(ShardIterator=iterator, Limit=limit))
        records = [self._record(raw) for raw in response.get("Records", [])]
        # DynamoDB Streams reports no lag; the reader treats a full page as "behind".
        return Page(records, response.get("NextShardIterator"))

    def arrival_text(self, ts: float) -> str:
        """DynamoDB creation times are whole seconds."""
        return iso_seconds(ts)

    def _record(self, raw: Mapping[str, Any]) -> StreamRecord:
        payload = dynamodb_record(raw, self.region, self.stream_arn)
        created = epoch(raw["dynamodb"]["ApproximateCreationDateTime"])
        body = payload["dynamodb"]
        # DynamoDB filter patterns address the whole record (`dynamodb`, `eventName`, ...).
        record = Record(body["SequenceNumber"], payload, created, payload if self._filter_data else None)
        size = int(body["SizeBytes"] or 0) * _SIZE_FACTOR + _RECORD_OVERHEAD
        return StreamRecord(record, json.dumps(body["Keys"], sort_keys=True), size)


def dynamodb_record(raw: Mapping[str, Any], region: str, stream_arn: str) -> dict[str, Any]:
    """Lambda's record for one GetRecords record of a DynamoDB stream (`pipelined events` uses it too)."""
    stream = raw["dynamodb"]
    created = epoch(stream["ApproximateCreationDateTime"])
    body: dict[str, Any] = {
        # The API rounds creation times down to the second; Lambda passes that number on.
        "ApproximateCreationDateTime": math.floor(created),
        "Keys": attributes(stream.get("Keys", {})),
    }
    for image in ("NewImage", "OldImage"):
        if image in stream:
            body[image] = attributes(stream[image])
    body["SequenceNumber"] = str(stream["SequenceNumber"])
    body["SizeBytes"] = stream.get("SizeBytes", 0)
    body["StreamViewType"] = stream.get("StreamViewType")
    payload: dict[str, Any] = {
        "eventID": raw["eventID"],
        "eventName": raw["eventName"],
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": body,
        "eventSourceARN": stream_arn,
    }
    identity = raw.get("userIdentity")
    if identity:
        # TTL deletions; the API spells the keys PrincipalId/Type, Lambda's event principalId/type.
        payload["userIdentity"] = {"type": identity.get("Type"), "principalId": identity.get("PrincipalId")}
    return payload


def dynamodb_stream_source(
    function: FunctionIdentity,
    config: DynamoDBStreamSource,
    checkpointer: Checkpointer,
    leases: Leases,
    clients: AwsClients,
) -> StreamSource:
    """The `dynamodb_stream` event source of a function."""
    adapter = DynamoDBStreamAdapter(
        clients, table=config.table, stream_arn=config.stream_arn, filter_data=bool(config.filter_patterns)
    )
    return StreamSource(function.name, config, adapter, checkpointer, leases)
