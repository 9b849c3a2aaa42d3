"""Asynchronous invocations through the Lambda API: queued on disk, retried, sent to destinations."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.http.support import lambda_client
from tests.sources.sqs.support import sqs_client
from tests.support import DaemonProcess, free_port, read_records, run_cli, wait_until, write_config

FAST_RETRIES = {"maximum_retry_attempts": 1, "retry_delays": ["100ms"]}


def test_event_runs_and_its_success_record_reaches_an_sqs_queue(
    aws: str, daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    sqs = sqs_client(aws)
    queue = sqs.create_queue(QueueName="successes")["QueueUrl"]
    records = tmp_path / "records.jsonl"
    config = write_config(
        tmp_path,
        {"fn": {"handler": "api_handlers.echo", "async": {"destinations": {"on_success": queue}}}},
        aws={"endpoint_url": aws},
    )
    process = daemon(config, {"RECORD_FILE": records})
    response = lambda_client(process).invoke(FunctionName="fn", InvocationType="Event", Payload=b'{"n": 1}')
    assert response["StatusCode"] == 202 and response["Payload"].read() == b""
    request_id = response["ResponseMetadata"]["RequestId"]
    messages = wait_until(
        lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages"),
        message="success record",
    )
    record = json.loads(messages[0]["Body"])
    assert record["version"] == "1.0" and record["timestamp"].endswith("Z")
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:fn:$LATEST",  # moto's account
        "condition": "Success",
        "approximateInvokeCount": 1,
    }
    assert record["requestPayload"] == {"n": 1}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"]["event"] == {"n": 1}
    assert [r["request_id"] for r in read_records(records)] == [request_id]
    assert process.metric("pipelined_async_events_received_total", function="fn") == 1
    assert process.metric("pipelined_invocations_total", function="fn", source="async") == 1


def test_failing_event_is_retried_then_recorded_on_failure(
    daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    records = tmp_path / "records.jsonl"
    functions: dict[str, Any] = {
        # on_failure defaults to the local dead-letter store.
        "parked": {"handler": "api_handlers.fail", "async": FAST_RETRIES},
        "forwarded": {
            "handler": "api_handlers.fail",
            "async": {**FAST_RETRIES, "destinations": {"on_failure": "function:collector"}},
        },
        "collector": {"handler": "api_handlers.echo"},
    }
    config = write_config(tmp_path, functions)
    process = daemon(config, {"RECORD_FILE": records})
    client = lambda_client(process)
    parked = client.invoke(FunctionName="parked", InvocationType="Event", Payload=b'{"n": 1}')
    forwarded = client.invoke(FunctionName="forwarded", InvocationType="Event", Payload=b'{"n": 2}')

    collected = wait_until(
        lambda: [r for r in read_records(records) if "requestContext" in r["event"]], message="failure record"
    )
    record = collected[0]["event"]
    assert record["requestContext"]["requestId"] == forwarded["ResponseMetadata"]["RequestId"]
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestPayload"] == {"n": 2}
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorMessage"] == "cannot handle 2"

    def dead_letters() -> Any:
        listed = run_cli("dlq", "list", "-c", str(config))
        return listed.stdout if "1 parked event(s)" in listed.stdout else None

    listing = wait_until(dead_letters, message="parked async event")
    assert "parked/async\tRetriesExhausted\tattempts=2\tcannot handle 1" in listing
    # Every attempt of an event keeps its request id, as Lambda's retries do.
    parked_id = parked["ResponseMetadata"]["RequestId"]
    assert [r["request_id"] for r in read_records(records) if r["event"] == {"n": 1}] == [parked_id] * 2
    assert (
        process.metric("pipelined_async_events_dropped_total", function="parked", reason="RetriesExhausted")
        == 1
    )
    wait_until(
        lambda: process.metric("pipelined_async_queue_depth", function="parked") == 0, message="empty queue"
    )


def test_event_older_than_maximum_event_age_goes_to_on_failure_without_running(
    daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    records = tmp_path / "records.jsonl"
    settings = {"maximum_event_age": "60s", "retry_delays": ["1h"]}
    config = write_config(tmp_path, {"fn": {"handler": "api_handlers.fail", "async": settings}})
    process = daemon(config, {"RECORD_FILE": records})
    lambda_client(process).invoke(FunctionName="fn", InvocationType="Event", Payload=b'{"n": 3}')
    wait_until(lambda: read_records(records), message="first attempt")
    process.stop()
    # The daemon stays down past the event's age limit (the clock is moved instead of waited for).
    with sqlite3.connect(tmp_path / "state" / "state.db") as db:
        assert db.execute("SELECT attempts FROM async_events").fetchall() == [(1,)]
        db.execute("UPDATE async_events SET received_at = received_at - 120, next_attempt_at = 0")
    restarted = daemon(config, {"RECORD_FILE": records})
    shown = wait_until(lambda: json.loads(run_cli("dlq", "show", "1", "-c", str(config)).stdout or "null"))
    assert shown["condition"] == "EventAgeExceeded" and shown["event"] == {"n": 3}
    assert shown["failureRecord"]["requestContext"]["approximateInvokeCount"] == 1
    assert shown["failureRecord"]["responsePayload"]["errorMessage"] == "cannot handle 3"
    assert len(read_records(records)) == 1
    assert restarted.metric("pipelined_async_events_dropped_total", reason="EventAgeExceeded") == 1


def test_queued_events_survive_kill_9_and_all_run_after_restart(
    daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    records = tmp_path / "records.jsonl"
    env = {"RECORD_FILE": records, "SLEEP_SECONDS": "0.05"}
    config = write_config(tmp_path, {"fn": {"handler": "api_handlers.slow", "reserved_concurrency": 1}})
    first = daemon(config, env)
    client = lambda_client(first)
    for n in range(50):
        assert (
            client.invoke(FunctionName="fn", InvocationType="Event", Payload=json.dumps({"n": n}))[
                "StatusCode"
            ]
            == 202
        )
    assert first.process is not None
    first.process.kill()
    first.wait()
    ran_before = {r["event"]["n"] for r in read_records(records)}
    assert len(ran_before) < 50
    second = daemon(config, env)
    wait_until(lambda: {r["event"]["n"] for r in read_records(records)} == set(range(50)), timeout=30)
    wait_until(lambda: second.metric("pipelined_async_queue_depth", function="fn") == 0, message="drained")


def test_a_full_queue_refuses_new_events_with_too_many_requests(
    daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        {"fn": {"handler": "api_handlers.slow", "reserved_concurrency": 1}},
        api={"listen": f"127.0.0.1:{free_port()}", "max_queued_events": 2},
    )
    process = daemon(config, {"RECORD_FILE": tmp_path / "r.jsonl", "SLEEP_SECONDS": "1"})
    client = lambda_client(process)
    for n in range(2):
        client.invoke(FunctionName="fn", InvocationType="Event", Payload=json.dumps({"n": n}))
    with pytest.raises(client.exceptions.TooManyRequestsException) as refused:
        client.invoke(FunctionName="fn", InvocationType="Event", Payload=b'{"n": 2}')
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
