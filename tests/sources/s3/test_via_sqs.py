"""S3 event notifications via SQS: decoding, filtering, and the whole path from a PUT to the handler."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from pipelined.sources.s3.records import (
    decode_notification,
    matches_s3_filter,
    normalise_record,
    s3_record_id,
)
from tests.sources.sqs import support as sqs_support
from tests.sources.sqs.support import PipelineFactory, queue_depth, sqs_client
from tests.support import read_records, run_cli, until, wait_until, write_config

pipeline = sqs_support.pipeline  # the fixture


def aws_record(key: str, bucket: str = "bkt", event: str = "ObjectCreated:Put") -> dict[str, Any]:
    """An S3 record as AWS sends it (the notification-content-structure page)."""
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "eu-west-1",
        "eventTime": "2026-01-02T03:04:05.678Z",
        "eventName": event,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.7"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "cfg",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": {
                "key": key,
                "size": 1024,
                "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                "sequencer": f"0055AED6DCD9028{len(key)}",
            },
        },
    }


# --- decoding -----------------------------------------------------------------------------------------


def test_an_aws_notification_is_decoded_unchanged() -> None:
    record = aws_record("photos/a+b.jpg")
    assert decode_notification(json.dumps({"Records": [record]})) == [record]


def test_an_sns_wrapped_notification_with_several_records_is_decoded() -> None:
    records = [aws_record("a.txt"), aws_record("b.txt")]
    envelope = {
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:uploads",
        "Message": json.dumps({"Records": records}),
    }
    assert decode_notification(json.dumps(envelope)) == records


def test_the_s3_test_event_has_no_records_and_other_bodies_are_not_notifications() -> None:
    test_event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-01-01T00:00:00Z",
        "Bucket": "b",
    }
    assert decode_notification(json.dumps(test_event)) == []
    sns_test = {"Type": "Notification", "Message": json.dumps(test_event)}
    assert decode_notification(json.dumps(sns_test)) == []
    for body in [
        "hello",
        "{}",
        '{"Records": []}',
        '{"Records": [{"eventName": "x"}]}',
        "[1]",
        '{"Type": "Notification"}',
    ]:
        assert decode_notification(body) is None, body


def test_records_from_s3_clones_are_completed_to_lambdas_shape() -> None:
    sparse = {
        "eventName": "s3:ObjectCreated:Put",  # MinIO style, with the prefix
        "eventTime": "2026-01-02T03:04:05.678Z",
        "s3": {"bucket": {"name": "bkt"}, "object": {"key": "a.txt", "size": 1}},
    }
    record = normalise_record(sparse)
    assert record["eventName"] == "ObjectCreated:Put"
    assert {
        "eventVersion",
        "eventSource",
        "awsRegion",
        "userIdentity",
        "requestParameters",
        "responseElements",
    } <= set(record)
    assert record["s3"]["bucket"]["arn"] == "arn:aws:s3:::bkt" and "ownerIdentity" in record["s3"]["bucket"]
    assert record["s3"]["object"]["sequencer"] and record["s3"]["s3SchemaVersion"] == "1.0"
    assert sparse["s3"]["object"] == {"key": "a.txt", "size": 1}  # the input is left alone


def test_item_identifier_is_the_object_key() -> None:
    assert s3_record_id(aws_record("photos/k.jpg")) == "photos/k.jpg"
    assert s3_record_id({"s3": {"object": {"key": "k"}}}) == "k"


def test_delete_records_lose_size_and_etag_as_on_aws() -> None:
    # moto sends size 0 and an eTag with a delete; AWS sends neither.
    removed = aws_record("photos/old.jpg", event="ObjectRemoved:Delete")
    removed["s3"]["object"].update(size=0, eTag="d41d8cd98f00b204e9800998ecf8427e")
    assert set(normalise_record(removed)["s3"]["object"]) == {"key", "sequencer"}
    created = normalise_record(aws_record("photos/new.jpg"))["s3"]["object"]
    assert {"key", "size", "eTag", "sequencer"} <= set(created)


def test_filters_apply_to_the_decoded_key() -> None:
    record = aws_record("uploads/my+photo.JPG")
    assert matches_s3_filter(record, ["s3:ObjectCreated:*"], "uploads/my photo", ".JPG")
    assert not matches_s3_filter(record, ["s3:ObjectRemoved:*"], "", "")


# --- in-process against moto --------------------------------------------------------------------------


async def test_failed_s3_notification_stays_on_the_queue_and_a_good_one_is_deleted(
    aws: str, pipeline: PipelineFactory
) -> None:
    sqs = sqs_client(aws)
    url = sqs.create_queue(QueueName="notes")["QueueUrl"]
    envelope = {
        "Type": "Notification",
        "Message": json.dumps({"Records": [aws_record("a.txt"), aws_record("b.txt")]}),
    }
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(envelope))
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"Records": [aws_record("fail.txt")]}))
    p = await pipeline(
        {
            "type": "s3",
            "bucket": "bkt",
            "via": {"sqs": "notes"},
            "batch_size": 1,
            "retry_backoff": {"base": "1m", "max": "1m"},  # keeps the failed one invisible
        },
        handler="s3_handler",
    )
    await until(lambda: len(p.records()) == 2, message="both notifications delivered")
    keys = [[r["s3"]["object"]["key"] for r in line["event"]["Records"]] for line in p.records()]
    assert sorted(keys) == [["a.txt", "b.txt"], ["fail.txt"]]  # one message, two records: one event
    await until(lambda: p.count("deleted") == 1, message="the good message deleted")
    assert queue_depth(sqs, url) == (0, 1)


# --- end to end ---------------------------------------------------------------------------------------


def test_s3_put_reaches_the_handler_as_lambdas_s3_event(
    aws: str, tmp_path: Path, daemon: Callable[..., Any]
) -> None:
    s3 = boto3.client("s3", endpoint_url=aws, region_name="us-east-1")
    sqs = sqs_client(aws)
    s3.create_bucket(Bucket="photos")
    url = sqs.create_queue(QueueName="photo-events")["QueueUrl"]
    records = tmp_path / "records.jsonl"
    source = {
        "type": "s3",
        "name": "photos",
        "bucket": "photos",
        "prefix": "uploads/",
        "suffix": ".jpg",
        "via": {"sqs": "photo-events"},
    }
    function = {
        "handler": "sqs_handlers.s3_handler",
        "environment": {"RECORD_FILE": str(records)},
        "events": [source],
    }
    config = write_config(tmp_path, {"fn": function}, aws={"endpoint_url": aws})
    setup = run_cli("s3", "setup-notifications", "-c", str(config))
    assert setup.returncode == 0, setup.stderr
    assert "s3://photos" in setup.stdout and "arn:aws:sqs:us-east-1:123456789012:photo-events" in setup.stdout
    policy = json.loads(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"]
    )
    assert policy["Statement"][0]["Principal"] == {"Service": "s3.amazonaws.com"}
    assert queue_depth(sqs, url) == (1, 0)  # S3's s3:TestEvent, which must never reach the handler
    # A notification the source's own filter rejects (moto applies the bucket's filter itself).
    sqs.send_message(
        QueueUrl=url, MessageBody=json.dumps({"Records": [aws_record("uploads/notes.txt", "photos")]})
    )
    proc = daemon(config)
    s3.put_object(Bucket="photos", Key="uploads/a b.jpg", Body=b"12345")
    wait_until(lambda: read_records(records), message="the handler invoked")
    wait_until(lambda: queue_depth(sqs, url) == (0, 0), message="every message consumed")
    (line,) = read_records(records)
    (record,) = line["event"]["Records"]
    assert record["eventSource"] == "aws:s3" and record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == "photos"
    assert record["s3"]["object"]["key"] == "uploads/a+b.jpg" and record["s3"]["object"]["size"] == 5
    assert {"userIdentity", "requestParameters", "responseElements", "eventTime", "awsRegion"} <= set(record)
    wait_until(
        lambda: (
            proc.metric("pipelined_events_total", function="fn", source="photos", outcome="filtered") == 1
        ),
        message="the rejected notification counted",
    )


def test_keys_keep_their_slashes_like_s3_sends_them() -> None:
    moto_style = {"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "uploads%2Fa+b.jpg"}}}
    assert normalise_record(moto_style)["s3"]["object"]["key"] == "uploads/a+b.jpg"
    literal = {"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "a%252Fb"}}}  # the key "a%2Fb"
    assert normalise_record(literal)["s3"]["object"]["key"] == "a%252Fb"
