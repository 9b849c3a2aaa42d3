"""SQS messages in Lambda's shape: the `Records` entry of one message, and what filter patterns see."""

from __future__ import annotations

import base64
import contextlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipelined.core.records import Record


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """What a source learned about its queue when it resolved it."""

    url: str
    arn: str
    region: str
    fifo: bool
    # The effective visibility timeout of received messages (the source's setting or the queue's).
    visibility_timeout: int


@dataclass(frozen=True, slots=True)
class Message:
    """One received SQS message, as settling it needs (the settle token of its records)."""

    message_id: str
    receipt_handle: str
    receive_count: int
    group_id: str | None = None

    @classmethod
    def received(cls, raw: Mapping[str, Any]) -> Message:
        """From one entry of a ReceiveMessage response."""
        attributes = raw.get("Attributes", {})
        return cls(
            raw["MessageId"],
            raw["ReceiptHandle"],
            int(attributes.get("ApproximateReceiveCount", 1)),
            attributes.get("MessageGroupId"),
        )


# Turns one received message into its records; None means "not decodable": the message is left to the
# queue's redrive policy instead of being deleted unseen.
Decoder = Callable[[Mapping[str, Any], Message, QueueInfo], Sequence[Record] | None]


def _attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    out["stringListValues"] = list(value.get("StringListValues", []))
    out["binaryListValues"] = [base64.b64encode(v).decode("ascii") for v in value.get("BinaryListValues", [])]
    out["dataType"] = value.get("DataType", "String")
    return out


def sqs_record(message: Mapping[str, Any], queue: QueueInfo) -> dict[str, Any]:
    """The record Lambda puts in `Records` for one message (lower-camel keys, unlike the SQS API)."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {k: _attribute(v) for k, v in message.get("MessageAttributes", {}).items()},
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record["md5OfBody"] = message["MD5OfBody"]
    record["eventSource"] = "aws:sqs"
    record["eventSourceARN"] = queue.arn
    record["awsRegion"] = queue.region
    return record


def filter_body(body: str) -> Any:
    """What filter patterns see as `body`: the decoded JSON object or array, else the raw text."""
    if body[:1] in ("{", "["):
        with contextlib.suppress(ValueError):
            return json.loads(body)
    return body


def sent_at(message: Mapping[str, Any]) -> float:
    """Epoch seconds the message was sent (now when SQS did not say)."""
    sent = message.get("Attributes", {}).get("SentTimestamp")
    return int(sent) / 1000 if sent else time.time()


def sqs_decoder(filtering: bool) -> Decoder:
    """One Lambda SQS record per message; with `filtering`, the record carries its body for patterns."""

    def decode(raw: Mapping[str, Any], message: Message, queue: QueueInfo) -> Sequence[Record]:
        data = {"body": filter_body(raw["Body"])} if filtering else None
        return (Record(message.message_id, sqs_record(raw, queue), sent_at(raw), data, message),)

    return decode
