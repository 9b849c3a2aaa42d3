"""MinIO bucket notifications over MQTT: normalised to Lambda's S3 records, filtered, delivered."""

from __future__ import annotations

import copy
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from pipelined.errors import SourceError
from pipelined.sources.s3.records import matches_s3_filter
from pipelined.sources.s3.via_mqtt import parse_notification, to_aws_record
from tests.sources.mqtt.test_source import publish
from tests.support import DaemonProcess, MosquittoBroker, read_records, run_cli, wait_until, write_config

# What MinIO (RELEASE.2024-*) publishes for `mc cp photo.jpg local/photos-bucket/photos/my summer(2024).jpg`:
# the object key is Go's url.QueryEscape of the name ("/" -> %2F, " " -> +), the top-level Key is not.
MINIO_PUT: dict[str, Any] = {
    "EventName": "s3:ObjectCreated:Put",
    "Key": "photos-bucket/photos/my summer(2024).jpg",
    "Records": [
        {
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": "2024-06-01T10:15:30.123Z",
            "eventName": "s3:ObjectCreated:Put",
            "userIdentity": {"principalId": "minioadmin"},
            "requestParameters": {"principalId": "minioadmin", "region": "", "sourceIPAddress": "172.18.0.1"},
            "responseElements": {
                "x-amz-id-2": "dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8",
                "x-amz-request-id": "17D4B8A2C3E5F6A1",
                "x-minio-deployment-id": "0170a4cc-dca6-4e72-86f1-c0cc760dff7f",
                "x-minio-origin-endpoint": "http://172.18.0.2:9000",
            },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": {
                    "name": "photos-bucket",
                    "ownerIdentity": {"principalId": "minioadmin"},
                    "arn": "arn:aws:s3:::photos-bucket",
                },
                "object": {
                    "key": "photos%2Fmy+summer%282024%29.jpg",
                    "size": 248682,
                    "eTag": "f1671feacb8bbf7b0397c6e9364e8c92",
                    "contentType": "image/jpeg",
                    "userMetadata": {"content-type": "image/jpeg"},
                    "sequencer": "17D4B8A2C4A1B2C3",
                },
            },
            "source": {
                "host": "172.18.0.1",
                "port": "",
                "userAgent": "MinIO (linux; amd64) minio-go/v7.0.70 mc/RELEASE.2024-05-24T09-08-49Z",
            },
        }
    ],
}


def minio_event(name: str, key: str, bucket: str = "photos-bucket") -> dict[str, Any]:
    """MINIO_PUT turned into another event; deletes carry no size, eTag, contentType or userMetadata."""
    event = copy.deepcopy(MINIO_PUT)
    record = event["Records"][0]
    event["EventName"] = record["eventName"] = name
    event["Key"] = f"{bucket}/{unquote_plus(key)}"
    record["s3"]["bucket"] |= {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}
    record["s3"]["object"]["key"] = key
    if name.startswith("s3:ObjectRemoved:"):
        record["s3"]["object"] = {"key": key, "sequencer": "17D4B8A2D0000001"}
    return event


# --- normalisation -------------------------------------------------------------------------------------


def test_minio_put_becomes_lambdas_s3_record() -> None:
    (original,) = parse_notification(json.dumps(MINIO_PUT).encode())
    record = to_aws_record(original, "eu-west-1")
    assert record.pop("minio") == MINIO_PUT["Records"][0]  # the original, for MinIO-only fields
    assert record == {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "eu-west-1",  # MinIO's region is unset: the daemon's aws.region
        "eventTime": "2024-06-01T10:15:30.123Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "minioadmin"},
        "requestParameters": {"sourceIPAddress": "172.18.0.1"},
        "responseElements": {
            "x-amz-id-2": "dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8",
            "x-amz-request-id": "17D4B8A2C3E5F6A1",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "Config",
            "bucket": {
                "name": "photos-bucket",
                "ownerIdentity": {"principalId": "minioadmin"},
                "arn": "arn:aws:s3:::photos-bucket",
            },
            "object": {
                "key": "photos/my+summer%282024%29.jpg",  # S3's encoding: "/" left alone, the rest as sent
                "size": 248682,
                "eTag": "f1671feacb8bbf7b0397c6e9364e8c92",
                "sequencer": "17D4B8A2C4A1B2C3",
            },
        },
    }
    assert unquote_plus(record["s3"]["object"]["key"]) == "photos/my summer(2024).jpg"
    assert matches_s3_filter(record, ["s3:ObjectCreated:*"], "photos/my ", "(2024).jpg")


def test_minio_delete_has_no_size_or_etag() -> None:
    (original,) = parse_notification(
        json.dumps(minio_event("s3:ObjectRemoved:Delete", "photos%2Fold.jpg")).encode()
    )
    record = to_aws_record(original, "us-east-1")
    assert record["eventName"] == "ObjectRemoved:Delete"
    assert record["s3"]["object"] == {"key": "photos/old.jpg", "sequencer": "17D4B8A2D0000001"}
    assert matches_s3_filter(record, ["s3:ObjectRemoved:*"], "photos/", ".jpg")
    assert not matches_s3_filter(record, ["s3:ObjectCreated:*"], "", "")


def test_region_bucket_arn_and_aws_records_are_kept() -> None:
    event = copy.deepcopy(MINIO_PUT)
    event["Records"][0]["awsRegion"] = "eu-central-1"
    del event["Records"][0]["s3"]["bucket"]["arn"]  # older MinIO releases
    record = to_aws_record(parse_notification(json.dumps(event).encode())[0], "us-east-1")
    assert record["awsRegion"] == "eu-central-1"
    assert record["s3"]["bucket"]["arn"] == "arn:aws:s3:::photos-bucket"
    aws = {k: v for k, v in record.items() if k != "minio"}
    assert to_aws_record(aws, "us-east-1") == aws  # already Lambda's shape: unchanged


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff\x00", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"EventName": "s3:ObjectCreated:Put"}', "no 'Records'"),
        (b'{"Records": [{"eventName": "x"}]}', "no 's3' object"),
        (b'{"Records": [{"s3": {"bucket": {}}}]}', "lacks 'bucket' or 'object'"),
    ],
)
def test_messages_that_are_not_notifications_are_rejected(payload: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        parse_notification(payload)


def test_test_event_has_no_records() -> None:
    assert parse_notification(b'{"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}') == []


# --- through the daemon --------------------------------------------------------------------------------


def test_minio_notifications_over_mqtt_reach_the_handler_normalised_and_filtered(
    tmp_path: Path,
    mosquitto: Callable[..., MosquittoBroker],
    daemon: Callable[..., DaemonProcess],
) -> None:
    broker = mosquitto()
    records_file = tmp_path / "records.jsonl"
    event = {
        "type": "s3",
        "bucket": "photos-bucket",
        "events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
        "prefix": "photos/",
        "suffix": ".jpg",
        "via": {"mqtt": "minio/events"},
        "maximum_batching_window": "200ms",
    }
    fn = {
        "handler": "mqtt_handlers.record",
        "environment": {"RECORD_FILE": str(records_file)},
        "events": [event],
    }
    config = write_config(
        tmp_path, {"fn": fn}, mqtt={"url": f"mqtt://127.0.0.1:{broker.port}", "client_id": "m"}
    )
    running = daemon(config)
    publish(
        broker.port,
        "minio/events",
        json.dumps(MINIO_PUT),
        json.dumps(minio_event("s3:ObjectRemoved:Delete", "photos%2Fold.jpg")),
        json.dumps(minio_event("s3:ObjectCreated:Put", "photos%2Fa.jpg", bucket="other-bucket")),
        json.dumps(minio_event("s3:ObjectCreated:Put", "photos%2Fnotes.txt")),
        json.dumps(minio_event("s3:ObjectCreated:Put", "thumbnails%2Fa.jpg")),
        "this is not a notification",
    )
    delivered = wait_until(
        lambda: read_records(records_file) if len(read_records(records_file)) >= 2 else None
    )
    keys = [(r["record"]["eventName"], r["record"]["s3"]["object"]["key"]) for r in delivered]
    assert keys == [
        ("ObjectCreated:Put", "photos/my+summer%282024%29.jpg"),
        ("ObjectRemoved:Delete", "photos/old.jpg"),
    ]
    assert all(r["record"]["eventSource"] == "aws:s3" for r in delivered)
    # The message that is not a notification is parked, not lost; the rest were filtered out.
    wait_until(lambda: "1 parked" in run_cli("dlq", "list", "-c", str(config)).stdout)
    assert "InvalidNotification" in run_cli("dlq", "list", "-c", str(config)).stdout
    assert running.metric("pipelined_events_total", source="s3-0", outcome="filtered") == 3

    # Every message was acknowledged: after a restart only new notifications arrive.
    running.send_signal(signal.SIGTERM)
    assert running.wait() == 0
    daemon(config)
    publish(
        broker.port, "minio/events", json.dumps(minio_event("s3:ObjectCreated:Copy", "photos%2Fcopy.jpg"))
    )
    wait_until(lambda: len(read_records(records_file)) == 3)
    assert read_records(records_file)[-1]["record"]["eventName"] == "ObjectCreated:Copy"
