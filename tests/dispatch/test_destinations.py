"""On-failure destinations: Lambda's failure record, the local store, SQS and SNS, and failing loudly."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipelined.aws import AwsClients
from pipelined.config import AwsConfig, DestinationConfig
from pipelined.core.lambda_errors import LambdaError
from pipelined.core.records import Batch, Record
from pipelined.dispatch.destinations import (
    FailedBatch,
    SnsDestination,
    SqliteDestination,
    SqsDestination,
    failure_record,
    make_destination,
)
from pipelined.errors import DestinationError
from pipelined.state import StateStore

ERROR = LambdaError("ValueError", "boom", ('  File "h.py", line 1, in handler\n',))
BATCH = Batch((Record("49590338271490256608559692538361571095921575989136588898", {"n": 1}, 1700000000.0),))
STREAM_INFO = {
    "KinesisBatchInfo": {
        "shardId": "shardId-000000000000",
        "startSequenceNumber": "49590338271490256608559692538361571095921575989136588898",
        "endSequenceNumber": "49590338271490256608559692538361571095921575989136588898",
        "approximateArrivalOfFirstRecord": "2023-11-14T22:13:20.000Z",
        "approximateArrivalOfLastRecord": "2023-11-14T22:13:20.000Z",
        "batchSize": 1,
        "streamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/s",
    }
}


def failed(
    context: dict[str, Any], error: LambdaError | None = ERROR, request_id: str | None = None
) -> FailedBatch:
    return FailedBatch(
        function="fn",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:fn",
        source="src",
        batch=BATCH,
        error=error,
        condition="RetryAttemptsExhausted",
        invoke_count=4,
        first_failed_at=1700000000.0,
        context=context,
        request_id=request_id,
    )


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[StateStore]:
    store = await StateStore.open(tmp_path / "state")
    yield store
    await store.close()


def test_a_stream_failure_record_has_lambdas_shape_and_no_records() -> None:
    record = failure_record(failed(STREAM_INFO, request_id="req-1"))
    assert record["requestContext"]["requestId"] == "req-1"  # the last invocation's
    assert set(record) == {"requestContext", "responseContext", "version", "timestamp", "KinesisBatchInfo"}
    # A stream mapping's record names the function unqualified (AWS's Kinesis example).
    assert record["requestContext"]["functionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:fn"
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 4
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["version"] == "1.0" and record["timestamp"].endswith("Z")
    assert record["KinesisBatchInfo"] == STREAM_INFO["KinesisBatchInfo"]


def test_an_async_failure_record_carries_the_event_and_the_functions_error() -> None:
    record = failure_record(failed({"requestPayload": {"n": 1}}))
    assert record["requestPayload"] == {"n": 1}
    # An asynchronous invocation's record names the version invoked.
    arn = "arn:aws:lambda:us-east-1:000000000000:function:fn:$LATEST"
    assert record["requestContext"]["functionArn"] == arn
    assert record["responsePayload"] == {
        "errorMessage": "boom",
        "errorType": "ValueError",
        "stackTrace": ['  File "h.py", line 1, in handler\n'],
    }


async def test_the_local_store_keeps_the_event_the_error_and_the_failure_record(state: StateStore) -> None:
    await SqliteDestination(state).send(failed({"requestPayload": {"n": 1}}))
    (entry,) = await state.dead_letters.list()
    assert entry.function == "fn" and entry.source == "src" and entry.attempts == 4
    assert entry.event == {"Records": [{"n": 1}]}
    assert entry.error is not None and entry.error["errorType"] == "ValueError"
    assert entry.failure_record["requestContext"]["condition"] == "RetryAttemptsExhausted"


async def test_sqs_and_sns_destinations_receive_the_failure_record(aws: str, state: StateStore) -> None:
    sqs = boto3.client("sqs", endpoint_url=aws, region_name="us-east-1")
    sns = boto3.client("sns", endpoint_url=aws, region_name="us-east-1")
    url = sqs.create_queue(QueueName="failures")["QueueUrl"]
    topic = sns.create_topic(Name="failures")["TopicArn"]
    topic_queue = sqs.create_queue(QueueName="topic-copy")["QueueUrl"]
    topic_queue_arn = sqs.get_queue_attributes(QueueUrl=topic_queue, AttributeNames=["QueueArn"])[
        "Attributes"
    ]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=topic_queue_arn["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    clients = AwsClients(AwsConfig(endpoint_url=aws), max_attempts=1)
    try:
        assert isinstance(
            make_destination(DestinationConfig(destination=url), state, clients), SqsDestination
        )
        assert isinstance(
            make_destination(DestinationConfig(destination=topic), state, clients), SnsDestination
        )
        await make_destination(DestinationConfig(destination=url), state, clients).send(failed(STREAM_INFO))
        await make_destination(DestinationConfig(destination=topic), state, clients).send(failed(STREAM_INFO))
    finally:
        await clients.close()
    for queue in (url, topic_queue):
        (message,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
        body = json.loads(message["Body"])
        assert body["KinesisBatchInfo"]["shardId"] == "shardId-000000000000"


async def test_an_unreachable_destination_raises_a_destination_error_naming_it(state: StateStore) -> None:
    clients = AwsClients(AwsConfig(endpoint_url="http://127.0.0.1:9"), max_attempts=1)
    try:
        with pytest.raises(
            DestinationError, match=r"cannot send failure record to SQS http://127\.0\.0\.1:9/q"
        ):
            await SqsDestination(clients, "http://127.0.0.1:9/q").send(failed(STREAM_INFO))
    finally:
        await clients.close()
