"""S3 event notifications in Lambda's shape: decoding, normalising, and the events/prefix/suffix filter.

Shared by every S3 source (via SQS here, via MQTT for MinIO): keep the signatures of
`event_name_matches` and `matches_s3_filter` stable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

TEST_EVENT = "s3:TestEvent"


def event_name_matches(event_name: str, patterns: Sequence[str]) -> bool:
    """True if `event_name` (with or without "s3:") matches one of `patterns`, e.g. "s3:ObjectCreated:*"."""
    name = event_name if event_name.startswith("s3:") else f"s3:{event_name}"
    for pattern in patterns:
        if pattern.endswith("*"):
            if name.startswith(pattern[:-1]):
                return True
        elif name == pattern:
            return True
    return False


def matches_s3_filter(record: Mapping[str, Any], events: Sequence[str], prefix: str, suffix: str) -> bool:
    """Whether an AWS-shaped S3 record passes a source's `events`, `prefix` and `suffix` filters.

    S3 sends object keys URL-encoded; the filters apply to the real (decoded) key, as S3's own do.
    """
    if not event_name_matches(str(record.get("eventName", "")), events):
        return False
    key = unquote_plus(str(record.get("s3", {}).get("object", {}).get("key", "")))
    return key.startswith(prefix) and key.endswith(suffix)


def record_bucket(record: Mapping[str, Any]) -> str:
    """The bucket name an S3 record is about ("" when missing)."""
    return str(record.get("s3", {}).get("bucket", {}).get("name", ""))


def s3_record_id(record: Mapping[str, Any]) -> str:
    """What a handler reports as `itemIdentifier` for an S3 record: its `s3.object.key`, as delivered.

    S3 records have no id of their own. Two records of one batch may share a key (a put, then a
    delete): reporting that key fails both, so neither event is lost.
    """
    return str(record.get("s3", {}).get("object", {}).get("key", ""))


def aws_encoded_key(key: str) -> str:
    """An object key in S3's notification encoding: URL-encoded, but with "/" left alone.

    moto and MinIO (Go's url.QueryEscape) encode "/" as %2F; S3 does not. A literal "%2F" in a key
    arrives as %252F, so this changes nothing S3 itself sends.
    """
    return key.replace("%2F", "/").replace("%2f", "/")


def is_removal(event_name: str) -> bool:
    """Whether an S3 event name (with or without "s3:") is an ObjectRemoved event."""
    return event_name.removeprefix("s3:").startswith("ObjectRemoved")


def decode_notification(body: str) -> list[dict[str, Any]] | None:
    """The S3 records in a notification message body, plain or in an SNS envelope.

    Returns [] for S3's `s3:TestEvent` (sent when a notification is configured: consume, never
    deliver) and None when the body is not an S3 notification at all.
    """
    data = _json(body)
    if isinstance(data, dict) and data.get("Type") == "Notification" and isinstance(data.get("Message"), str):
        data = _json(data["Message"])  # SNS → SQS without raw message delivery
    if not isinstance(data, dict):
        return None
    if data.get("Event") == TEST_EVENT:
        return []
    records = data.get("Records")
    if not isinstance(records, list) or not records:
        return None
    if not all(isinstance(r, dict) and isinstance(r.get("s3"), dict) for r in records):
        return None
    return [normalise_record(r) for r in records]


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def normalise_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an S3 record with every key of Lambda's S3 event shape, the sender's values kept.

    S3 clones (moto, MinIO) leave some keys out or prefix `eventName` with "s3:"; handlers written
    for AWS must not trip over that. Missing values get neutral local stand-ins.
    """
    out = dict(record)
    name = str(out.get("eventName", ""))
    out["eventName"] = name.removeprefix("s3:")
    out.setdefault("eventVersion", "2.1")
    out.setdefault("eventSource", "aws:s3")
    out.setdefault("awsRegion", "us-east-1")
    out.setdefault("userIdentity", {"principalId": "AWS:local"})
    out.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
    out.setdefault("responseElements", {"x-amz-request-id": "", "x-amz-id-2": ""})
    s3 = dict(out.get("s3") or {})
    s3.setdefault("s3SchemaVersion", "1.0")
    s3.setdefault("configurationId", "")
    bucket = dict(s3.get("bucket") or {})
    bucket.setdefault("ownerIdentity", {"principalId": "local"})
    if "name" in bucket:
        bucket.setdefault("arn", f"arn:aws:s3:::{bucket['name']}")
    obj = dict(s3.get("object") or {})
    if isinstance(obj.get("key"), str):
        obj["key"] = aws_encoded_key(obj["key"])
    if is_removal(name):
        # S3's delete records carry neither size nor eTag (moto sends both).
        obj.pop("size", None)
        obj.pop("eTag", None)
    if "sequencer" not in obj:
        # S3 orders events of one key by sequencer; the event time (ms, hex) keeps that order.
        obj["sequencer"] = _sequencer(str(out.get("eventTime", "")))
    s3["bucket"], s3["object"] = bucket, obj
    out["s3"] = s3
    return out


def _sequencer(event_time: str) -> str:
    try:
        millis = int(datetime.fromisoformat(event_time.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        millis = 0
    return f"{millis:016X}"
