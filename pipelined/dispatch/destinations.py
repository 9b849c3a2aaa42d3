"""On-failure destinations: where a batch goes when its retries or age run out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pipelined.aws import AwsClients, resolve_queue_url
from pipelined.config import DestinationConfig
from pipelined.core.identity import VERSION, new_request_id
from pipelined.core.lambda_errors import LambdaError
from pipelined.core.records import Batch
from pipelined.core.timestamps import now_millis
from pipelined.errors import DestinationError
from pipelined.state import NewDeadLetter, StateStore


@dataclass(frozen=True, slots=True)
class FailedBatch:
    """A batch that failed for good, with everything its failure record needs."""

    function: str
    function_arn: str
    source: str
    batch: Batch
    error: LambdaError | None
    condition: str
    # Lambda's approximateInvokeCount: retries + 1.
    invoke_count: int
    first_failed_at: float
    # Source-specific keys: requestPayload for async sources, DDBStreamBatchInfo/KinesisBatchInfo, ...
    context: Mapping[str, Any]
    # The request id of the last invocation (the one on its START line); None when the batch was never
    # invoked (too old before its first invocation, rejected by its source): a fresh one is made then.
    request_id: str | None = None


def failure_record(failed: FailedBatch) -> dict[str, Any]:
    """Lambda's on-failure record for a failed batch or event."""
    # AWS's records differ here: an asynchronous invocation's (schedules, MQTT, S3 notifications: the
    # ones carrying requestPayload) names the version invoked, `...:function:fn:$LATEST`; a stream event
    # source mapping's names the function unqualified (the Kinesis and DynamoDB guides' examples).
    arn = failed.function_arn
    if "requestPayload" in failed.context:
        arn += f":{VERSION}"
    record: dict[str, Any] = {
        "requestContext": {
            "requestId": failed.request_id or new_request_id(),
            "functionArn": arn,
            "condition": failed.condition,
            "approximateInvokeCount": failed.invoke_count,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": VERSION,
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "timestamp": now_millis(),
    }
    record.update(failed.context)
    if "requestPayload" in failed.context and failed.error is not None:
        # Async invocations carry the function's error as the response payload.
        record["responsePayload"] = failed.error.payload()
    return record


class Destination(Protocol):
    """Somewhere a failure record can be sent."""

    async def send(self, failed: FailedBatch) -> None:
        """Deliver the failure record; raise DestinationError when it cannot be delivered."""


class SqliteDestination:
    """The local dead-letter store: keeps the failure record *and* the event, for `pipelined dlq`."""

    def __init__(self, state: StateStore) -> None:
        self._state = state

    async def send(self, failed: FailedBatch) -> None:
        entry = NewDeadLetter(
            function=failed.function,
            source=failed.source,
            event=failed.batch.event(),
            error=failed.error.payload() if failed.error is not None else None,
            failure_record=failure_record(failed),
            condition=failed.condition,
            attempts=failed.invoke_count,
            first_failed_at=failed.first_failed_at,
        )
        try:
            await self._state.dead_letters.add([entry])
        except Exception as exc:
            raise DestinationError(f"cannot write to the local dead-letter store: {exc}") from exc


class SqsDestination:
    """An SQS queue (URL or ARN) that receives the failure record as the message body."""

    def __init__(self, clients: AwsClients, queue: str) -> None:
        self._clients = clients
        self._queue = queue
        self._url: str | None = None

    async def send(self, failed: FailedBatch) -> None:
        await self.send_record(failure_record(failed), "failure record")

    async def send_record(
        self, record: Any, what: str = "record", attributes: Mapping[str, str] | None = None
    ) -> None:
        """Send any Lambda-shaped record (async invocations' destinations use this too) as JSON."""
        extra: dict[str, Any] = {}
        if attributes:
            extra["MessageAttributes"] = {
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
            }
        try:
            sqs = await self._clients.client("sqs")
            if self._url is None:
                self._url = await resolve_queue_url(sqs, self._queue)
            await sqs.send_message(QueueUrl=self._url, MessageBody=json.dumps(record, default=str), **extra)
        except Exception as exc:
            raise DestinationError(f"cannot send {what} to SQS {self._queue}: {exc}") from exc


class SnsDestination:
    """An SNS topic that receives the failure record as the message."""

    def __init__(self, clients: AwsClients, topic_arn: str) -> None:
        self._clients = clients
        self._topic_arn = topic_arn

    async def send(self, failed: FailedBatch) -> None:
        await self.send_record(failure_record(failed), "failure record")

    async def send_record(self, record: Mapping[str, Any], what: str = "record") -> None:
        """Publish any Lambda-shaped record (async invocations' destinations use this too)."""
        try:
            sns = await self._clients.client("sns")
            await sns.publish(TopicArn=self._topic_arn, Message=json.dumps(record, default=str))
        except Exception as exc:
            raise DestinationError(f"cannot publish {what} to SNS {self._topic_arn}: {exc}") from exc


def make_destination(config: DestinationConfig, state: StateStore, clients: AwsClients) -> Destination:
    """The destination a `{destination: ...}` config names."""
    if config.kind == "sqlite":
        return SqliteDestination(state)
    if config.kind == "sns":
        return SnsDestination(clients, config.destination)
    return SqsDestination(clients, config.destination)
