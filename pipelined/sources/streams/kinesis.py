"""Kinesis Data Streams for the stream engine: the API calls and Lambda's Kinesis record shape."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pipelined.aws import AwsClients
from pipelined.config import KinesisSource
from pipelined.core.identity import FunctionIdentity, parse_arn, role_arn
from pipelined.core.records import Record
from pipelined.core.timestamps import iso_millis
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

# Bytes of a record's event besides its data (keys, ARNs, sequence number), for the 6 MB payload cap.
_RECORD_OVERHEAD = 500


def _filter_data(data: bytes) -> dict[str, Any]:
    # Lambda filters Kinesis records on `data` only, and only when it is JSON; other data never matches.
    try:
        return {"data": json.loads(data)}
    except ValueError:
        return {}


class KinesisAdapter:
    """ListShards, GetShardIterator and GetRecords on one Kinesis stream."""

    batch_info_key = "KinesisBatchInfo"
    max_fetch = 10_000
    # Kinesis allows 5 GetRecords a second per shard, shared by every consumer of the stream.
    idle_poll_interval = 0.5
    busy_poll_interval = 0.2
    supports_at_timestamp = True

    def __init__(
        self, clients: AwsClients, stream: str, identity_arn: str, filter_data: bool = False
    ) -> None:
        self._clients = clients
        self._stream = stream
        self._filter_data = filter_data
        # Lambda puts the function's execution role here (invokeIdentityArn).
        self._identity = identity_arn
        self.stream_arn = stream if stream.startswith("arn:") else ""
        self.region = ""

    async def resolve(self) -> str:
        """The stream's ARN, checking that the stream exists."""
        kinesis = await self._clients.client("kinesis")
        key = {"StreamARN": self._stream} if self._stream.startswith("arn:") else {"StreamName": self._stream}
        try:
            summary = await kinesis.describe_stream_summary(**key)
        except Exception as exc:
            raise SourceError(f"Kinesis stream {self._stream}: {exc}") from exc
        self.stream_arn = str(summary["StreamDescriptionSummary"]["StreamARN"])
        self.region = parse_arn(self.stream_arn)["region"]
        return self.stream_arn

    async def list_shards(self) -> list[ShardInfo]:
        """Every listed shard, following NextToken."""
        kinesis = await self._clients.client("kinesis")
        shards: list[ShardInfo] = []
        request: dict[str, Any] = {"StreamARN": self.stream_arn}
        while True:
            response = await aws_call(kinesis.list_shards(**request))
            shards.extend(shard_info(s) for s in response.get("Shards", []))
            token = response.get("NextToken")
            if not token:
                return shards
            # ListShards refuses the stream's name alongside a NextToken.
            request = {"NextToken": token}

    async def shard_iterator(self, shard_id: str, position: Position) -> str:
        """A shard iterator at `position`."""
        kinesis = await self._clients.client("kinesis")
        request: dict[str, Any] = {
            "StreamARN": self.stream_arn,
            "ShardId": shard_id,
            "ShardIteratorType": position.kind,
        }
        if position.sequence is not None:
            request["StartingSequenceNumber"] = position.sequence
        if position.timestamp is not None:
            request["Timestamp"] = datetime.fromtimestamp(position.timestamp, UTC)
        response = await aws_call(kinesis.get_shard_iterator(**request))
        return str(response["ShardIterator"])

    async def get_records(self, shard_id: str, iterator: str, limit: int) -> Page:
        """The next records of a shard, in Lambda's shape."""
        kinesis = await self._clients.client("kinesis")
        response = await aws_call(
            kinesis.get_records(ShardIterator=iterator, Limit=limit, StreamARN=self.stream_arn)
        )
        records = [self._record(shard_id, raw) for raw in response.get("Records", [])]
        return Page(records, response.get("NextShardIterator"), response.get("MillisBehindLatest", 0) > 0)

    def arrival_text(self, ts: float) -> str:
        """Kinesis arrival times are shown to the millisecond."""
        return iso_millis(ts)

    def _record(self, shard_id: str, raw: dict[str, Any]) -> StreamRecord:
        payload = kinesis_record(shard_id, raw, self._identity, self.region, self.stream_arn)
        data: bytes = raw["Data"]
        arrived = epoch(raw["ApproximateArrivalTimestamp"])
        filter_data = _filter_data(data) if self._filter_data else None
        record = Record(payload["kinesis"]["sequenceNumber"], payload, arrived, filter_data)
        size = len(payload["kinesis"]["data"]) + _RECORD_OVERHEAD
        return StreamRecord(record, raw["PartitionKey"], size)


def kinesis_record(
    shard_id: str, raw: Mapping[str, Any], identity_arn: str, region: str, stream_arn: str
) -> dict[str, Any]:
    """Lambda's record for one GetRecords record of a Kinesis shard (`pipelined events` uses it too)."""
    sequence = str(raw["SequenceNumber"])
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": raw["PartitionKey"],
            "sequenceNumber": sequence,
            "data": base64.b64encode(raw["Data"]).decode("ascii"),
            "approximateArrivalTimestamp": round(epoch(raw["ApproximateArrivalTimestamp"]), 3),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": identity_arn,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def kinesis_source(
    function: FunctionIdentity,
    config: KinesisSource,
    checkpointer: Checkpointer,
    leases: Leases,
    clients: AwsClients,
) -> StreamSource:
    """The `kinesis` event source of a function."""
    # pipelined has no execution roles: name one per function, as the invokeIdentityArn shows.
    identity = role_arn(function.account, function.name)
    adapter = KinesisAdapter(clients, config.stream, identity, bool(config.filter_patterns))
    return StreamSource(function.name, config, adapter, checkpointer, leases)
