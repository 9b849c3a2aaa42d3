"""Unchanged aws-lambda-powertools handlers against the daemon in its default mode (process isolation).

Inline, concurrent invocations share the Logger's module state (39 of 40 logged another invocation's
request id) and `cold_start` is per daemon; in worker processes each execution environment is its own.
Parser models must accept the event of every event type pipelined produces, as they accept AWS's.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from tests.sources.mqtt.test_source import publish
from tests.sources.s3.test_via_mqtt import minio_event
from tests.sources.sqs.support import sqs_client
from tests.support import (
    DaemonProcess,
    MosquittoBroker,
    free_port,
    read_records,
    run_cli,
    wait_until,
    write_config,
)

MESSAGES = 40
WORKERS = 8


def json_lines(logs: str) -> list[dict[str, Any]]:
    """The JSON objects the handlers logged (wherever the daemon's own prefix puts them)."""
    found = []
    for line in logs.splitlines():
        start = line.find('{"level"')
        if start >= 0:
            found.append(json.loads(line[start:]))
    return found


def test_logger_lines_carry_their_own_request_id_and_cold_start_is_once_per_worker(
    aws: str, tmp_path: Path, daemon: Callable[..., DaemonProcess]
) -> None:
    sqs = sqs_client(aws)
    url = sqs.create_queue(QueueName="logged")["QueueUrl"]
    for start in range(0, MESSAGES, 10):
        entries = [{"Id": str(n), "MessageBody": f"m-{n}"} for n in range(start, start + 10)]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)
    fn = {
        "handler": "powertools_fidelity.logged",
        "events": [
            {
                "type": "sqs",
                "name": "logged",
                "queue": "logged",
                "batch_size": 1,
                "maximum_concurrency": WORKERS,
            }
        ],
    }
    proc = daemon(write_config(tmp_path, {"fn": fn}, aws={"endpoint_url": aws}))
    wait_until(
        lambda: proc.metric("pipelined_events_total", source="logged", outcome="deleted") == MESSAGES,
        timeout=40,
        message="every message handled",
    )
    logs = proc.logs()
    lines = [x for x in json_lines(logs) if x.get("service") == "fidelity"]
    starts = set(re.findall(r"START RequestId: (\S+)", logs))
    by_body: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        by_body[line["body"]].add(line["function_request_id"])
    assert len(lines) == 2 * MESSAGES
    # Each invocation's two lines name its own request id: 40 invocations, 40 ids, each START's.
    assert all(len(ids) == 1 for ids in by_body.values()), by_body
    ids = {next(iter(i)) for i in by_body.values()}
    assert len(ids) == MESSAGES and ids <= starts
    # cold_start: true for the first invocation of each worker (execution environment), then false.
    invocations: dict[int, list[tuple[str, bool]]] = defaultdict(list)
    for line in lines:
        if line["message"] == "handling":
            invocations[line["pid"]].append((line["function_request_id"], line["cold_start"]))
    colds = {pid: [c for _, c in runs] for pid, runs in invocations.items()}
    print(
        f"powertools: {len(lines)} Logger lines, {len(colds)} workers, {sum(map(len, colds.values()))} runs"
    )
    assert all(c[0] is True and not any(c[1:]) for c in colds.values()), colds
    assert len(colds) == proc.metric("pipelined_cold_starts_total", function="fn")
    assert 2 <= len(colds) <= WORKERS


def _source(kind: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "name": name, **extra}


def test_parser_models_accept_every_event_pipelined_produces(
    aws: str,
    tmp_path: Path,
    daemon: Callable[..., DaemonProcess],
    mosquitto: Callable[..., MosquittoBroker],
) -> None:
    broker = mosquitto()
    sqs = sqs_client(aws)
    sqs.create_queue(QueueName="plain")
    s3 = boto3.client("s3", endpoint_url=aws, region_name="us-east-1")
    s3.create_bucket(Bucket="photos")
    sqs.create_queue(QueueName="photo-events")
    kinesis = boto3.client("kinesis", endpoint_url=aws, region_name="us-east-1")
    kinesis.create_stream(StreamName="events", ShardCount=1)
    dynamodb = boto3.client("dynamodb", endpoint_url=aws, region_name="us-east-1")
    dynamodb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    # (label, powertools model, event source): an S3 event source gives Lambda's S3 event on both paths.
    sources = [
        ("sqs", "SqsModel", _source("sqs", "plain", queue="plain")),
        ("s3-via-sqs", "S3Model", _source("s3", "photos", bucket="photos", via={"sqs": "photo-events"})),
        (
            "s3-via-mqtt",
            "S3Model",
            _source(
                "s3",
                "minio",
                bucket="photos-bucket",
                via={"mqtt": "minio/events"},
                maximum_batching_window="100ms",
            ),
        ),
        (
            "kinesis",
            "KinesisDataStreamModel",
            _source("kinesis", "events", stream="events", starting_position="TRIM_HORIZON"),
        ),
        (
            "dynamodb",
            "DynamoDBStreamModel",
            _source("dynamodb_stream", "orders", table="orders", starting_position="TRIM_HORIZON"),
        ),
        ("schedule", "EventBridgeModel", _source("schedule", "tick", expression="rate(1 second)")),
        ("api", "APIGatewayProxyEventModel", _source("api", "rest", path="/rest/{id}", method="post")),
        (
            "http_api",
            "APIGatewayProxyEventV2Model",
            _source("http_api", "http", path="/http/{id}", method="post"),
        ),
        ("mqtt", "MqttEvent", _source("mqtt", "sensors", topic="sensors/#")),
    ]
    files = {label: tmp_path / f"{label}.jsonl" for label, _, _ in sources}
    functions = {
        label.replace("_", "-"): {
            "handler": "powertools_fidelity.parsed",
            "environment": {"MODEL": model, "RECORD_FILE": str(files[label])},
            "events": [source],
        }
        for label, model, source in sources
    }
    gateway = free_port()
    config = write_config(
        tmp_path,
        functions,
        aws={"endpoint_url": aws},
        mqtt={"url": f"mqtt://127.0.0.1:{broker.port}", "client_id": "parser"},
        gateway={"listen": f"127.0.0.1:{gateway}"},
    )
    setup = run_cli("s3", "setup-notifications", "-c", str(config))
    assert setup.returncode == 0, setup.stderr
    proc = daemon(config)
    url = sqs.get_queue_url(QueueName="plain")["QueueUrl"]
    sqs.send_message(
        QueueUrl=url, MessageBody="hello", MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}}
    )
    s3.put_object(Bucket="photos", Key="a b.jpg", Body=b"12345")
    kinesis.put_record(StreamName="events", Data=b'{"n": 1}', PartitionKey="p")
    dynamodb.put_item(TableName="orders", Item={"pk": {"S": "o-1"}, "total": {"N": "3"}})
    publish(broker.port, "minio/events", json.dumps(minio_event("s3:ObjectCreated:Put", "photos%2Fa.jpg")))
    publish(broker.port, "sensors/kitchen", '{"temp": 21.5}')
    for path in ("/rest/1", "/http/1"):
        request = urllib.request.Request(
            f"http://127.0.0.1:{gateway}{path}?q=1", data=b'{"a": 1}', method="POST"
        )
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def every_model_ran() -> bool:
        return all(read_records(path) for path in files.values())

    wait_until(
        every_model_ran, timeout=30, message=f"every event type delivered; log:\n{proc.logs()[-3000:]}"
    )
    results = {label: read_records(path)[0] for label, path in files.items()}
    accepted = sorted(f"{label}: {r['model']}" for label, r in results.items() if r["ok"])
    print(f"powertools: parser models accepted: {accepted}")
    assert {label: r["error"] for label, r in results.items() if not r["ok"]} == {}
