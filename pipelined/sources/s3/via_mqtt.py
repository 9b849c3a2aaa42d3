"""S3 notifications from MinIO over MQTT: normalised to the S3 records Lambda receives (eventVersion 2.1).

`type: s3` with `via: {mqtt: TOPIC}` is an MQTT source (mqtt.py) whose messages are MinIO's bucket
notifications; each becomes one record per S3 event that passes the bucket/events/prefix/suffix filter.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiomqtt

from pipelined.config import S3Source
from pipelined.core.records import PartialFailureMode, Record
from pipelined.errors import SourceError
from pipelined.sources.mqtt.source import MqttEventSource, retry_policy_for, session_for
from pipelined.sources.s3.records import (
    aws_encoded_key,
    is_removal,
    matches_s3_filter,
    normalise_record,
    s3_record_id,
)

if TYPE_CHECKING:
    from pipelined.config import EventSourceConfig
    from pipelined.sources.base import PushSource, SourceContext

log = logging.getLogger("pipelined.sources.minio")

AWS_EVENT_VERSION = "2.1"
# S3 sends one of these when a notification configuration is saved; Lambda never sees it.
TEST_EVENTS = frozenset({"s3:TestEvent"})


def parse_notification(payload: bytes) -> list[Mapping[str, Any]]:
    """The S3 records of one notification message; [] for a test event; SourceError if it is not one.

    MinIO publishes ``{"EventName": "s3:ObjectCreated:Put", "Key": "bucket/key", "Records": [...]}``;
    a bare AWS notification (``{"Records": [...]}``) is accepted too.
    """
    try:
        message = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"not an S3 notification: payload is not JSON ({exc})") from None
    if not isinstance(message, dict):
        raise SourceError(f"not an S3 notification: expected a JSON object, got {type(message).__name__}")
    if message.get("Event") in TEST_EVENTS or message.get("EventName") in TEST_EVENTS:
        return []
    records = message.get("Records")
    if not isinstance(records, list) or not records:
        raise SourceError("not an S3 notification: no 'Records' list")
    for index, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("s3"), dict):
            raise SourceError(f"not an S3 notification: Records[{index}] has no 's3' object")
        if not isinstance(record["s3"].get("bucket"), dict) or not isinstance(
            record["s3"].get("object"), dict
        ):
            raise SourceError(f"not an S3 notification: Records[{index}].s3 lacks 'bucket' or 'object'")
    return records


def _principal(value: Any) -> dict[str, str]:
    principal = value.get("principalId") if isinstance(value, Mapping) else None
    return {"principalId": str(principal or "")}


def to_aws_record(record: Mapping[str, Any], region: str) -> dict[str, Any]:
    """One notification record in AWS's shape; a MinIO original is kept verbatim under "minio".

    Object keys get S3's encoding: MinIO uses Go's ``url.QueryEscape``, which differs from S3's only
    in encoding "/" as "%2F", so `key.split("/")` works as on AWS.
    """
    if record.get("eventSource") == "aws:s3":
        # Already Lambda's shape (e.g. S3 notifications bridged to MQTT): completed as via SQS.
        return normalise_record(record)
    s3 = record["s3"]
    bucket, obj = s3["bucket"], s3["object"]
    name = str(bucket.get("name", ""))
    event_name = str(record.get("eventName", ""))
    request = record.get("requestParameters")
    response = record.get("responseElements")
    aws_object: dict[str, Any] = {"key": aws_encoded_key(str(obj.get("key", "")))}
    # Deletes carry neither size nor eTag in S3; versionId only on versioned buckets.
    removal = is_removal(event_name)
    fields = ("versionId", "sequencer") if removal else ("size", "eTag", "versionId", "sequencer")
    for field in fields:
        if obj.get(field) not in (None, ""):
            aws_object[field] = obj[field]
    return {
        "eventVersion": AWS_EVENT_VERSION,
        "eventSource": "aws:s3",
        # MinIO reports the server's configured region, which is often unset.
        "awsRegion": str(record.get("awsRegion") or region),
        "eventTime": str(record.get("eventTime", "")),
        "eventName": event_name.removeprefix("s3:"),
        "userIdentity": _principal(record.get("userIdentity")),
        "requestParameters": {
            "sourceIPAddress": str(request.get("sourceIPAddress", "")) if isinstance(request, Mapping) else ""
        },
        "responseElements": {
            key: str(value)
            for key, value in (response.items() if isinstance(response, Mapping) else ())
            if key in ("x-amz-request-id", "x-amz-id-2")
        },
        "s3": {
            "s3SchemaVersion": str(s3.get("s3SchemaVersion", "1.0")),
            "configurationId": str(s3.get("configurationId", "")),
            "bucket": {
                "name": name,
                "ownerIdentity": _principal(bucket.get("ownerIdentity")),
                "arn": str(bucket.get("arn") or f"arn:aws:s3:::{name}"),
            },
            "object": aws_object,
        },
        "minio": dict(record),
    }


# --- the source ----------------------------------------------------------------------------------------


def build_s3_via_mqtt(cfg: EventSourceConfig, ctx: SourceContext) -> PushSource:
    """The source for `type: s3` with `via: {mqtt: TOPIC}`: MinIO's bucket notifications."""
    assert isinstance(cfg, S3Source) and cfg.name is not None and cfg.via.mqtt is not None
    region = ctx.function.region
    metrics = ctx.metrics

    def convert(message: aiomqtt.Message, received_at: float) -> list[Record]:
        records = [to_aws_record(r, region) for r in parse_notification(bytes(message.payload))]
        keep = [
            r
            for r in records
            if r["s3"]["bucket"]["name"] == cfg.bucket
            and matches_s3_filter(r, cfg.events, cfg.prefix, cfg.suffix)
        ]
        if metrics is not None and len(keep) < len(records):
            # Never in a batch, so the dispatcher cannot count them (as for S3 via SQS).
            metrics.count("polled", len(records) - len(keep))
            metrics.count("filtered", len(records) - len(keep))
        # itemIdentifier in batchItemFailures: the object key as delivered, as for S3 via SQS.
        return [Record(s3_record_id(r), r, received_at) for r in keep]

    session = session_for(ctx, cfg.name, cfg.via.mqtt, 1, cfg.batch_size * cfg.maximum_concurrency)
    return MqttEventSource(
        cfg.name,
        f"{ctx.function.name}/{cfg.name}",
        session,
        convert,
        cfg.batch_size,
        cfg.maximum_batching_window,
        cfg.maximum_concurrency,
        retry_policy_for(cfg),
        PartialFailureMode.ITEMS if cfg.report_batch_item_failures else None,
        reject_invalid=True,
    )
