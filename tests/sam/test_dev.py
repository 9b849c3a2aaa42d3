"""AWS's kinds of SAM sample applications, each run by `pipelined dev --sam` end to end."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.sam.support import SamDev, sam_app
from tests.support import read_records, run_cli, wait_until


@pytest.fixture
def dev() -> Iterator[Callable[..., SamDev]]:
    started: list[SamDev] = []

    def start(template: Path, *arguments: str, command: str = "dev") -> SamDev:
        process = SamDev(template, *arguments, command=command)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
        assert process.wait() == 0, process.logs()


def _client(service: str, proc: SamDev) -> Any:
    return boto3.client(
        service,
        endpoint_url=proc.endpoint(),
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _events(template: Path) -> list[dict[str, Any]]:
    return [line["event"] for line in read_records(template.parent / "src" / "records.jsonl")]


def test_lambda_guide_hello_world_answers_get_hello(tmp_path: Path, dev: Callable[..., SamDev]) -> None:
    template = sam_app(tmp_path, "hello-api")
    proc = dev(template)
    base = f"http://127.0.0.1:{proc.gateway_port}"
    with urllib.request.urlopen(f"{base}/hello", timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"message": "hello world", "path": "/hello", "method": "GET"}
    # Only the template's route and method exist.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(f"{base}/hello", method="POST", data=b"{}"), timeout=10)
    assert refused.value.code in (403, 404, 405)


def test_run_sam_serves_the_template_and_a_reload_rereads_it(
    tmp_path: Path, dev: Callable[..., SamDev]
) -> None:
    template = sam_app(tmp_path, "hello-api")
    proc = dev(template, command="run")
    assert "Architectures: not supported (left out)" in proc.logs()
    base = f"http://127.0.0.1:{proc.gateway_port}"
    with urllib.request.urlopen(f"{base}/hello", timeout=10) as response:
        assert response.status == 200
    template.write_text(template.read_text().replace("Path: /hello", "Path: /greetings"))
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reloaded:" in proc.logs(), message=f"the reload; log:\n{proc.logs()}")
    with urllib.request.urlopen(f"{base}/greetings", timeout=10) as response:
        assert json.loads(response.read())["path"] == "/greetings"


def test_sqs_sample_consumes_matching_messages(tmp_path: Path, dev: Callable[..., SamDev]) -> None:
    template = sam_app(tmp_path, "sqs")
    proc = dev(template)
    assert "created queue orders (visibility 30s, the template's RedrivePolicy)" in proc.logs()
    sent = run_cli("dev", "send", "--sam", str(template), "orders", '{"kind": "order", "n": 1}')
    assert sent.returncode == 0, sent.stderr
    sqs = _client("sqs", proc)
    queue = sqs.get_queue_url(QueueName="orders")["QueueUrl"]
    for body in ('{"kind": "refund", "n": 2}', '{"kind": "order", "n": 3}'):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    wait_until(lambda: sum(len(e["Records"]) for e in _events(template)) == 2, message=f"log:\n{proc.logs()}")
    bodies = sorted(json.loads(r["body"])["n"] for e in _events(template) for r in e["Records"])
    assert bodies == [1, 3]  # the FilterCriteria pattern dropped the refund

    def in_flight() -> str:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "All"]
        attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=names)["Attributes"]
        # The template's queue attributes, not dev mode's defaults.
        assert attributes["VisibilityTimeout"] == "30"
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"].endswith(":OrdersDeadLetters")
        assert int(redrive["maxReceiveCount"]) == 5
        return attributes["ApproximateNumberOfMessages"] + attributes["ApproximateNumberOfMessagesNotVisible"]

    wait_until(lambda: in_flight() == "00", message="every message deleted")


def test_dynamodb_sample_sees_the_tables_stream(tmp_path: Path, dev: Callable[..., SamDev]) -> None:
    template = sam_app(tmp_path, "dynamodb")
    proc = dev(template)
    table = "dynamodb-items"  # !Sub "${AWS::StackName}-items": the stack is named after its directory
    _client("dynamodb", proc).put_item(TableName=table, Item={"id": {"S": "a1"}, "n": {"N": "7"}})
    wait_until(lambda: _events(template), message=f"stream record; log:\n{proc.logs()}")
    record = _events(template)[0]["Records"][0]
    assert record["eventSource"] == "aws:dynamodb" and record["eventName"] == "INSERT"
    assert record["dynamodb"]["Keys"] == {"id": {"S": "a1"}}


def test_s3_sample_runs_for_objects_under_the_prefix(tmp_path: Path, dev: Callable[..., SamDev]) -> None:
    template = sam_app(tmp_path, "s3")
    proc = dev(template)
    s3 = _client("s3", proc)
    s3.put_object(Bucket="uploadsbucket", Key="other/skip.txt", Body=b"no")
    s3.put_object(Bucket="uploadsbucket", Key="uploads/photo.jpg", Body=b"yes")
    wait_until(lambda: _events(template), message=f"the upload; log:\n{proc.logs()}")
    wait_until(lambda: "uploads/photo.jpg" in json.dumps(_events(template)), message="the upload's record")
    keys = [r["s3"]["object"]["key"] for e in _events(template) for r in e["Records"]]
    assert keys == ["uploads/photo.jpg"]


def test_schedule_sample_fires_with_overridden_parameters(tmp_path: Path, dev: Callable[..., SamDev]) -> None:
    template = sam_app(tmp_path, "schedule")
    # rate(1 second) is pipelined's extension (AWS's minimum is a minute); it keeps the test short.
    proc = dev(template, "--parameter-overrides", "Rate='rate(1 second)' Stage=prod")
    wait_until(lambda: _events(template), timeout=15, message=f"a firing; log:\n{proc.logs()}")
    assert _events(template)[0] == {"stage": "prod", "source": "schedule"}


def test_eventbridge_sample_runs_for_matching_put_events(tmp_path: Path, dev: Callable[..., SamDev]) -> None:
    template = sam_app(tmp_path, "eventbridge")
    proc = dev(template)
    events = boto3.client(
        "events",
        endpoint_url=f"http://127.0.0.1:{proc.api_port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    entries = [
        {"Source": "shop.orders", "DetailType": "OrderShipped", "Detail": json.dumps({"id": 1})},
        {"Source": "shop.orders", "DetailType": "OrderPlaced", "Detail": json.dumps({"id": 2})},
    ]
    assert events.put_events(Entries=entries)["FailedEntryCount"] == 0
    wait_until(lambda: _events(template), message=f"the matching event; log:\n{proc.logs()}")
    (event,) = [e for e in _events(template) if e.get("source") == "shop.orders"]
    assert event["detail-type"] == "OrderPlaced" and event["detail"] == {"id": 2}
