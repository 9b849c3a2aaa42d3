"""boto3 and the AWS CLI against the daemon's Lambda API: synchronous Invoke and the read operations."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.http.support import lambda_client
from tests.support import DaemonProcess, read_records, wait_until, write_config

FUNCTIONS = {
    "echo": {"handler": "api_handlers.echo", "environment": {"COLOUR": "blue"}, "memory_mb": 256},
    "failing": {"handler": "api_handlers.fail"},
    "single": {
        "handler": "api_handlers.slow",
        "reserved_concurrency": 1,
        "environment": {"SLEEP_SECONDS": "3"},
    },
}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonProcess, Path]]:
    """One daemon for the module (unsigned, loopback), with its record file."""
    directory = tmp_path_factory.mktemp("lambda-api")
    records = directory / "records.jsonl"
    process = DaemonProcess(write_config(directory, FUNCTIONS), {"RECORD_FILE": str(records)}).start()
    yield process, records
    process.stop()


def test_invoke_returns_the_handler_result_by_name_arn_or_partial_arn(
    api: tuple[DaemonProcess, Path],
) -> None:
    client = lambda_client(api[0])
    context = base64.b64encode(
        json.dumps(
            {"custom": {"tenant": "t1"}, "env": {"locale": "fr"}, "client": {"installation_id": "i-9"}}
        ).encode()
    ).decode()
    response = client.invoke(FunctionName="echo", Payload=json.dumps({"a": 1}), ClientContext=context)
    assert response["StatusCode"] == 200 and response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    result = json.loads(response["Payload"].read())
    assert result["event"] == {"a": 1}
    assert (result["custom"], result["env"], result["installation_id"]) == (
        {"tenant": "t1"},
        {"locale": "fr"},
        "i-9",
    )
    assert result["request_id"] == response["ResponseMetadata"]["RequestId"]
    for name in (
        "arn:aws:lambda:us-east-1:000000000000:function:echo",
        "000000000000:function:echo:$LATEST",
        "echo:$LATEST",
    ):
        answer = client.invoke(FunctionName=name, Payload=b'"x"')
        assert json.loads(answer["Payload"].read())["event"] == "x", name
    assert (
        json.loads(client.invoke(FunctionName="echo", Qualifier="$LATEST")["Payload"].read())["event"] == {}
    )


def test_handler_error_is_a_function_error_with_lambdas_error_object(api: tuple[DaemonProcess, Path]) -> None:
    response = lambda_client(api[0]).invoke(FunctionName="failing", Payload=b'{"n": 7}')
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert list(error) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert (error["errorType"], error["errorMessage"]) == ("RuntimeError", "cannot handle 7")
    assert error["requestId"] == response["ResponseMetadata"]["RequestId"]
    assert any("api_handlers.py" in frame for frame in error["stackTrace"])


def test_log_type_tail_returns_the_invocations_log_from_start_to_report(
    api: tuple[DaemonProcess, Path],
) -> None:
    response = lambda_client(api[0]).invoke(FunctionName="echo", Payload=b"{}", LogType="Tail")
    request_id = response["ResponseMetadata"]["RequestId"]
    lines = base64.b64decode(response["LogResult"]).decode().splitlines()
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert lines[1] == f"echo {request_id}"  # a print, bare as in Lambda's tail
    assert lines[2] == f"END RequestId: {request_id}"
    assert lines[3].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    assert len(lines) == 4


def test_dry_run_checks_the_function_and_runs_nothing(api: tuple[DaemonProcess, Path]) -> None:
    client = lambda_client(api[0])
    before = len(read_records(api[1]))
    assert client.invoke(FunctionName="echo", InvocationType="DryRun")["StatusCode"] == 204
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="nope", InvocationType="DryRun")
    assert len(read_records(api[1])) == before


def test_unknown_function_or_version_is_resource_not_found(api: tuple[DaemonProcess, Path]) -> None:
    client = lambda_client(api[0])
    with pytest.raises(client.exceptions.ResourceNotFoundException) as missing:
        client.invoke(FunctionName="nope")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert "function:nope" in missing.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="echo", Qualifier="7")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function(FunctionName="nope")


def test_oversized_and_invalid_payloads_are_refused(api: tuple[DaemonProcess, Path]) -> None:
    client = lambda_client(api[0])
    big = json.dumps("x" * (6 * 1024 * 1024)).encode()
    for kind, payload in (("RequestResponse", big), ("Event", json.dumps("x" * (1024 * 1024)).encode())):
        with pytest.raises(client.exceptions.ClientError) as refused:
            client.invoke(FunctionName="echo", InvocationType=kind, Payload=payload)
        assert refused.value.response["Error"]["Code"] == "RequestEntityTooLargeException", kind
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    with pytest.raises(client.exceptions.InvalidRequestContentException) as invalid:
        client.invoke(FunctionName="echo", Payload=b"{not json")
    assert invalid.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_sync_invoke_at_reserved_concurrency_is_throttled_at_once(api: tuple[DaemonProcess, Path]) -> None:
    daemon, records = api
    client = lambda_client(daemon)
    first: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: first.update(client.invoke(FunctionName="single", Payload=b'{"n": 1}'))
    )
    thread.start()
    wait_until(lambda: any(r["event"] == {"n": 1} for r in read_records(records)), message="first invocation")
    with pytest.raises(client.exceptions.TooManyRequestsException) as throttled:
        client.invoke(FunctionName="single", Payload=b'{"n": 2}')
    assert throttled.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert daemon.metric("pipelined_throttles_total", function="single", source="api") == 1
    thread.join(15)
    assert first["StatusCode"] == 200
    assert not any(r["event"] == {"n": 2} for r in read_records(records))


def test_read_operations_return_the_yaml_in_lambdas_field_names(api: tuple[DaemonProcess, Path]) -> None:
    client = lambda_client(api[0])
    configuration = client.get_function(FunctionName="echo")["Configuration"]
    assert configuration["FunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:echo"
    assert configuration["Handler"] == "api_handlers.echo" and configuration["Runtime"].startswith("python3")
    assert (configuration["Timeout"], configuration["MemorySize"]) == (10, 256)
    # (The harness adds the daemon's RECORD_FILE: a worker sees only its function's environment.)
    assert configuration["Environment"]["Variables"]["COLOUR"] == "blue"
    assert (configuration["State"], configuration["LastUpdateStatus"]) == ("Active", "Successful")
    assert client.get_function_configuration(FunctionName="echo")["RevisionId"] == configuration["RevisionId"]
    assert client.get_function(FunctionName="single")["Concurrency"] == {"ReservedConcurrentExecutions": 1}
    assert client.get_function_concurrency(FunctionName="single")["ReservedConcurrentExecutions"] == 1
    assert "ReservedConcurrentExecutions" not in client.get_function_concurrency(FunctionName="echo")
    with pytest.raises(client.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        client.get_provisioned_concurrency_config(FunctionName="echo", Qualifier="$LATEST")
    invoke_config = client.get_function_event_invoke_config(FunctionName="echo")
    assert (invoke_config["MaximumRetryAttempts"], invoke_config["MaximumEventAgeInSeconds"]) == (2, 21600)
    pages = list(client.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(p["Functions"]) for p in pages] == [2, 1]
    assert [f["FunctionName"] for p in pages for f in p["Functions"]] == ["echo", "failing", "single"]


def test_write_operations_are_refused_naming_the_yaml_file(api: tuple[DaemonProcess, Path]) -> None:
    client = lambda_client(api[0])
    with pytest.raises(client.exceptions.InvalidParameterValueException) as refused:
        client.update_function_configuration(FunctionName="echo", Timeout=5)
    message = refused.value.response["Error"]["Message"]
    assert "UpdateFunctionConfiguration" in message and str(api[0].config) in message and "reload" in message
    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.delete_function(FunctionName="echo")


def test_aws_cli_lambda_invoke_writes_the_result_file(
    api: tuple[DaemonProcess, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out.json"
    aws = Path(sys.executable).parent / "aws"
    result = subprocess.run(
        [
            str(aws),
            "--endpoint-url",
            f"http://127.0.0.1:{api[0].api_port}",
            "--region",
            "us-east-1",
            "lambda",
            "invoke",
            "--function-name",
            "echo",
            "--payload",
            '{"from": "cli"}',
            "--log-type",
            "Tail",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["StatusCode"] == 200 and answer["ExecutedVersion"] == "$LATEST"
    assert base64.b64decode(answer["LogResult"]).decode().startswith("START RequestId: ")
    assert json.loads(out.read_text())["event"] == {"from": "cli"}
