"""Sample events (`pipelined events generate TYPE`, `pipelined invoke FN --event TYPE`).

Each sample is built by the code that builds the real events of its type (the SQS decoder, the S3
notification normaliser, the stream adapters' record builders, the schedule source, the gateway's event
builders), from what the upstream would have sent: a sample can never drift from a real event.
A new type is one function and one entry in SAMPLES.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pipelined.core.apigw_events import ApiContext, HttpRequest, api_id, http_event, rest_event
from pipelined.core.eventbridge_events import EntryError, envelope, parse_entry
from pipelined.core.identity import DEFAULT_ACCOUNT_ID, new_request_id, role_arn, rule_arn
from pipelined.core.records import Batch, Record
from pipelined.core.routes import ApiKind, Route, RouteMatch
from pipelined.core.timestamps import iso_millis
from pipelined.errors import UsageError
from pipelined.sources.s3.records import normalise_record
from pipelined.sources.schedule import scheduled_event
from pipelined.sources.sqs.records import Message, QueueInfo, sqs_decoder
from pipelined.sources.streams.dynamodb import dynamodb_record
from pipelined.sources.streams.kinesis import kinesis_record


@dataclass(frozen=True, slots=True)
class SampleOptions:
    """What the command line may say about a sample; None: the type's default."""

    body: str | None = None
    bucket: str | None = None
    key: str | None = None
    method: str | None = None
    path: str | None = None
    region: str = "us-east-1"
    account: str = DEFAULT_ACCOUNT_ID


def _wrap(payloads: list[Mapping[str, Any]], now: float) -> Any:
    """The handler's event for records of a batched type, as the runner builds it."""
    return Batch(tuple(Record(str(n), p, now) for n, p in enumerate(payloads))).event()


def _sqs(options: SampleOptions) -> Any:
    body = options.body if options.body is not None else '{"hello": "world"}'
    queue = "sample-queue"
    now = time.time()
    raw = {
        "MessageId": str(uuid.uuid4()),
        "ReceiptHandle": uuid.uuid4().hex,
        "Body": body,
        "MD5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(int(now * 1000)),
            "SenderId": options.account,
            "ApproximateFirstReceiveTimestamp": str(int(now * 1000)),
        },
    }
    info = QueueInfo(
        url=f"https://sqs.{options.region}.amazonaws.com/{options.account}/{queue}",
        arn=f"arn:aws:sqs:{options.region}:{options.account}:{queue}",
        region=options.region,
        fifo=False,
        visibility_timeout=30,
    )
    records = sqs_decoder(False)(raw, Message.received(raw), info)
    return Batch(tuple(records or ())).event()


def _s3(options: SampleOptions) -> Any:
    body = (options.body or "hello").encode()
    now = time.time()
    # What S3 puts in a notification (normalise_record fills in the rest, as for a real one).
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": options.region,
        "eventTime": iso_millis(now),
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "sample",
            "bucket": {"name": options.bucket or "sample-bucket"},
            "object": {
                "key": options.key or "incoming/sample.txt",
                "size": len(body),
                "eTag": hashlib.md5(body, usedforsecurity=False).hexdigest(),
            },
        },
    }
    return _wrap([normalise_record(record)], now)


def _attribute(value: Any) -> dict[str, Any]:
    """A JSON value as a DynamoDB AttributeValue."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, int | float | Decimal):
        return {"N": str(value)}
    if isinstance(value, list):
        return {"L": [_attribute(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {k: _attribute(v) for k, v in value.items()}}
    return {"S": str(value)}


def _json_object(text: str | None, default: dict[str, Any], what: str) -> dict[str, Any]:
    if text is None:
        return default
    try:
        value = json.loads(text, parse_float=Decimal)
    except ValueError as exc:
        raise UsageError(f"--body: {what} needs a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(f"--body: {what} needs a JSON object, got {text!r}")
    return value


def _dynamodb(options: SampleOptions) -> Any:
    item = _json_object(options.body, {"pk": "sample", "message": "hello"}, "a DynamoDB item")
    key = {"pk": item.get("pk", "sample")}
    now = time.time()
    table = "sample-table"
    stream_arn = (
        f"arn:aws:dynamodb:{options.region}:{options.account}:table/{table}/stream/{iso_millis(now)[:23]}"
    )
    # A GetRecords record as botocore returns it.
    raw = {
        "eventID": uuid.uuid4().hex,
        "eventName": "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": now,
            "Keys": {k: _attribute(v) for k, v in key.items()},
            "NewImage": {k: _attribute(v) for k, v in item.items()},
            "SequenceNumber": str(int(now * 1000) * 100),
            "SizeBytes": len(json.dumps(item, default=str)),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
    return _wrap([dynamodb_record(raw, options.region, stream_arn)], now)


def _kinesis(options: SampleOptions) -> Any:
    data = (options.body if options.body is not None else '{"hello": "world"}').encode()
    now = time.time()
    stream = "sample-stream"
    raw = {
        "SequenceNumber": f"{int(now * 1000):056d}",
        "ApproximateArrivalTimestamp": now,
        "Data": data,
        "PartitionKey": "sample",
    }
    payload = kinesis_record(
        "shardId-000000000000",
        raw,
        role_arn(options.account, "sample"),
        options.region,
        f"arn:aws:kinesis:{options.region}:{options.account}:stream/{stream}",
    )
    return _wrap([payload], now)


def _schedule(options: SampleOptions) -> Any:
    return scheduled_event(
        options.account, options.region, rule_arn(options.region, options.account, "sample"), time.time()
    )


def _eventbridge(options: SampleOptions) -> Any:
    # What `put_events` would send, --body as its Detail (a JSON object).
    raw = {
        "Source": "sample.app",
        "DetailType": "Sample Event",
        "Detail": options.body or "{}",
    }
    entry = parse_entry(raw)
    if isinstance(entry, EntryError):
        raise UsageError(f"eventbridge sample: --body: {entry.message}")
    return envelope(entry, str(uuid.uuid4()), options.account, options.region, time.time())


def _request(options: SampleOptions, api: ApiKind) -> tuple[HttpRequest, RouteMatch, ApiContext]:
    method = (options.method or ("POST" if options.body is not None else "GET")).upper()
    path, _, query = (options.path or "/hello").partition("?")
    if not path.startswith("/"):
        raise UsageError(f"--path: must start with '/', got {path!r}")
    body = (options.body or "").encode()
    headers = [("Host", "127.0.0.1:8080"), ("User-Agent", "pipelined-events"), ("Accept", "*/*")]
    if body:
        headers.append(("Content-Type", "application/json"))
    request = HttpRequest(method, path, query, tuple(headers), body, "127.0.0.1", new_request_id())
    route = Route.of(api, method, path, "sample", "sample", "1.0" if api == "rest" else "2.0")
    stage = "prod" if api == "rest" else "$default"
    # The ids the gateway gives its APIs, so a sample looks like a request to `pipelined dev`.
    return request, RouteMatch(route, {}), ApiContext(api_id(api), options.account, stage)


def _api(options: SampleOptions) -> Any:
    return rest_event(*_request(options, "rest"))


def _http_api(options: SampleOptions) -> Any:
    return http_event(*_request(options, "http"))


@dataclass(frozen=True, slots=True)
class Sample:
    """One type of sample event."""

    build: Callable[[SampleOptions], Any]
    # What the type is, for --help.
    about: str


SAMPLES: dict[str, Sample] = {
    "sqs": Sample(_sqs, "an SQS batch of one message (--body)"),
    "s3": Sample(_s3, "an S3 ObjectCreated:Put notification (--bucket, --key, --body as the object)"),
    "dynamodb": Sample(_dynamodb, "a DynamoDB stream INSERT (--body: the item as a JSON object)"),
    "kinesis": Sample(_kinesis, "a Kinesis batch of one record (--body: its data)"),
    "schedule": Sample(_schedule, "an EventBridge Scheduled Event"),
    "eventbridge": Sample(_eventbridge, "an EventBridge event from a bus (--body: its detail)"),
    "api": Sample(_api, "an API Gateway REST API request, payload 1.0 (--method, --path, --body)"),
    "http-api": Sample(_http_api, "an API Gateway HTTP API request, payload 2.0 (--method, --path, --body)"),
}


def sample_event(kind: str, options: SampleOptions) -> Any:
    """A sample event of type `kind`; UsageError naming the known types if there is none."""
    sample = SAMPLES.get(kind)
    if sample is None:
        raise UsageError(f"no sample event type '{kind}' (types: {', '.join(SAMPLES)})")
    return sample.build(options)
