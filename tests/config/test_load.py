"""Tests for load_config: a full file with its defaults, and problems with the file itself."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelined.config import (
    AwsConfig,
    DynamoDBStreamSource,
    KinesisSource,
    LoggingConfig,
    MqttSource,
    S3Source,
    ScheduleSource,
    SqsSource,
    load_config,
)
from tests.config.support import problems_of, write

FULL = """
state_dir: ./state
shutdown_timeout: 1m
http:
  listen: "[::1]:0"
aws:
  region: eu-west-1
  endpoint_url: ""
mqtt:
  url: mqtts://broker.local:8883
  ca_file: certs/ca.pem
  cert_file: certs/cert.pem
  key_file: certs/key.pem
logging:
  level: debug
  format: json
functions:
  hello:
    handler: app.handler
    code: fn
    layers: [layer]
    timeout: 30s
    environment: {NUMBER: 1, FLAG: true, RATIO: 0.5, TEXT: hi}
    on_failure: {destination: sqlite}
    events:
      - type: schedule
        expression: rate(5 minutes)
      - type: sqs
        queue: https://sqs.us-east-1.amazonaws.com/123456789012/jobs
        batch_size: 100
        maximum_batching_window: 2s
      - type: dynamodb_stream
        table: orders
        on_failure: {destination: "arn:aws:sqs:us-east-1:123456789012:dlq"}
      - type: kinesis
        stream: clicks
        starting_position: AT_TIMESTAMP
        starting_position_timestamp: 2024-05-01T12:00:00Z
      - type: s3
        bucket: uploads
        via: {sqs: uploads-events}
      - type: mqtt
        name: sensors
        topic: sensors/+/temp
  dotted:
    handler: pkg.mod.handle
    code: ./fn
    layers: [./layer]
    on_failure: {destination: "arn:aws:sns:us-east-1:123456789012:alerts"}
"""


def test_full_file_loads_with_defaults_and_resolved_paths(project: Path) -> None:
    config = load_config(write(project, FULL))
    assert config.source_path == project / "pipelined.yaml"
    assert config.state_dir == project / "state"
    assert config.shutdown_timeout == 60.0
    assert (config.http.host, config.http.port) == ("::1", 0)
    assert config.aws == AwsConfig(region="eu-west-1", endpoint_url=None)
    assert config.mqtt.ca_file == project / "certs" / "ca.pem"
    assert config.mqtt.key_file == project / "certs" / "key.pem"
    assert (config.mqtt.client_id, config.mqtt.keepalive) == ("pipelined", 60.0)
    assert config.logging == LoggingConfig(level="DEBUG", format="json")

    hello = config.functions["hello"]
    assert (hello.module_name, hello.attribute_name) == ("app", "handler")
    assert hello.code == project / "fn"
    assert hello.layers == [project / "layer"]
    assert (hello.timeout, hello.memory_mb, hello.reserved_concurrency) == (30.0, 128, None)
    assert hello.environment == {"NUMBER": "1", "FLAG": "true", "RATIO": "0.5", "TEXT": "hi"}
    assert hello.on_failure is not None and hello.on_failure.kind == "sqlite"
    assert [e.name for e in hello.events] == [
        "schedule-0",
        "sqs-1",
        "dynamodb_stream-2",
        "kinesis-3",
        "s3-4",
        "sensors",
    ]
    schedule, sqs, ddb, kinesis, s3, mqtt = hello.events
    assert isinstance(schedule, ScheduleSource)
    assert (schedule.timezone, schedule.catch_up, schedule.input) == ("UTC", "latest", None)
    assert (schedule.maximum_retry_attempts, schedule.maximum_event_age) == (2, 21600.0)
    assert isinstance(sqs, SqsSource)
    assert (sqs.batch_size, sqs.maximum_batching_window, sqs.maximum_concurrency) == (100, 2.0, 5)
    assert (sqs.visibility_timeout, sqs.retry_backoff.base, sqs.retry_backoff.max) == (None, 1.0, 300.0)
    assert isinstance(ddb, DynamoDBStreamSource)
    assert (ddb.starting_position, ddb.batch_size, ddb.maximum_retry_attempts) == ("TRIM_HORIZON", 100, -1)
    assert (ddb.maximum_record_age, ddb.parallelization_factor, ddb.stream_arn) == (-1.0, 1, None)
    assert ddb.on_failure is not None and ddb.on_failure.kind == "sqs"
    assert isinstance(kinesis, KinesisSource)
    assert kinesis.starting_position_timestamp == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert isinstance(s3, S3Source)
    assert (s3.events, s3.prefix, s3.via.sqs, s3.via.mqtt) == (
        ["s3:ObjectCreated:*"],
        "",
        "uploads-events",
        None,
    )
    assert isinstance(mqtt, MqttSource)
    assert (mqtt.qos, mqtt.maximum_retry_attempts, mqtt.enabled) == (1, 2, True)

    dotted = config.functions["dotted"]
    assert (dotted.module_name, dotted.attribute_name) == ("pkg.mod", "handle")
    assert dotted.on_failure is not None and dotted.on_failure.kind == "sns"
    assert config.summary() == (
        "2 functions, 6 event sources (1 schedule, 1 sqs, 1 dynamodb_stream, 1 kinesis, 1 s3, 1 mqtt)"
    )


def test_yaml_syntax_error(project: Path) -> None:
    path = write(project, "functions:\n  f:\n    handler: app.handler\n    code: [fn\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:5: invalid YAML: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "1: file is empty"),
        ("# only a comment\n", "1: file is empty"),
        ("- a\n- b\n", "1: top level must be a mapping"),
        (
            "functions:\n  f: !custom x\n",
            "2: invalid YAML: could not determine a constructor for the tag '!custom'",
        ),
    ],
)
def test_file_level_problems(project: Path, text: str, expected: str) -> None:
    path = write(project, text)
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:{expected}")


def test_unreadable_files(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "missing.yaml") == [f"{tmp_path / 'missing.yaml'}: file not found"]
    assert problems_of(tmp_path)[0].startswith(f"{tmp_path}: cannot read file")
    (tmp_path / "latin1.yaml").write_bytes(b"functions:\n  f: caf\xe9\n")
    assert problems_of(tmp_path / "latin1.yaml") == [f"{tmp_path / 'latin1.yaml'}:2: file is not valid UTF-8"]
