"""What a handler sees, as on Lambda: its context, environment, account, trace id and execution role."""

from __future__ import annotations

import base64
import json
import logging
import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipelined.aws import AwsClients
from pipelined.config import AwsConfig, FunctionConfig
from pipelined.core.identity import function_arn
from pipelined.functions import credentials as role_credentials
from pipelined.functions.credentials import RoleCredentials
from pipelined.functions.function import Function
from pipelined.observe.metrics import Metrics
from tests.http.support import lambda_client
from tests.support import TEST_FUNCTIONS, free_port, invoke, read_records, wait_until, write_config

MOTO_ACCOUNT = "123456789012"
FRESH_TRACE = re.compile(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0")
SENT_TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def _call(client: Any, name: str, payload: Any, client_context: Any = None) -> Any:
    extra = {}
    if client_context is not None:
        extra["ClientContext"] = base64.b64encode(json.dumps(client_context).encode()).decode()
    response = client.invoke(FunctionName=name, Payload=json.dumps(payload), **extra)
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return body


def test_context_and_environment_are_lambdas_in_both_isolation_modes(
    tmp_path: Path, daemon: Any, aws: str
) -> None:
    common = {"handler": "fidelity_handlers.context_and_environment", "memory_mb": 256}
    config = write_config(
        tmp_path,
        {
            "ctx-process": {**common, "isolation": "process", "environment": {"MINE": "yes"}},
            "ctx-inline": {**common, "isolation": "inline", "environment": {"MINE": "yes"}},
        },
    )
    client = lambda_client(daemon(config))
    client_context = {"custom": {"k": "v"}, "w3c": {"traceparent": "00-abc-def-01"}}
    for name in ("ctx-process", "ctx-inline"):
        seen = _call(client, name, {"client_context": client_context}, client_context)
        context, reference = seen["context"], seen["reference"]
        # awslambdaric's LambdaContext, built in the handler from the same invocation and os.environ.
        assert context | {"remaining_ms": 0} == reference | {"remaining_ms": 0}, name
        attributes = context["attributes"]
        assert attributes["memory_limit_in_mb"] == {"type": "str", "value": "256"}
        assert attributes["identity"]["type"] == "CognitoIdentity"
        assert attributes["client_context"]["fields"]["custom"]["value"] == {"k": "v"}
        assert context["w3c"] == {"traceparent": "00-abc-def-01"}
        assert {"log", "w3c", "get_remaining_time_in_millis"} <= set(context["methods"])
        # One account everywhere: the endpoint's own (moto's).
        arn = function_arn("us-east-1", MOTO_ACCOUNT, name)
        assert attributes["invoked_function_arn"]["value"] == arn
        assert 9000 < context["remaining_ms"] <= 10000
        env = seen["environment"]
        major_minor = ".".join(map(str, __import__("sys").version_info[:2]))
        assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_python{major_minor}"
        assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
        assert env["TZ"] == ":UTC" and env["LANG"] == "en_US.UTF-8" and env["MINE"] == "yes"
        assert env["LAMBDA_RUNTIME_DIR"] and env["LAMBDA_TASK_ROOT"] == str(TEST_FUNCTIONS)
        assert FRESH_TRACE.fullmatch(env["_X_AMZN_TRACE_ID"])
        assert "AWS_LAMBDA_FUNCTION_TIMEOUT" not in env
    # A worker runs in the function's code directory (inline cannot chdir per function).
    assert _call(client, "ctx-process", {})["cwd"] == str(TEST_FUNCTIONS)
    traces = {_call(client, "ctx-process", {})["environment"]["_X_AMZN_TRACE_ID"] for _ in range(3)}
    assert len(traces) == 3  # a new trace per invocation


def test_sqs_trace_header_reaches_a_tracer_handler_and_every_arn_has_the_endpoints_account(
    tmp_path: Path, daemon: Any, aws: str
) -> None:
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="traced")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]
    queue_arn = attributes["QueueArn"]
    records = tmp_path / "records.jsonl"
    events = [
        {"type": "sqs", "queue": queue, "batch_size": 1},
        {"type": "schedule", "name": "tick", "expression": "rate(1 second)"},
    ]
    config = write_config(
        tmp_path,
        {
            "traced": {
                "handler": "fidelity_handlers.traced",
                "isolation": "process",
                "environment": {"RECORD_FILE": str(records), "POWERTOOLS_TRACE_DISABLED": "false"},
                "events": events,
            }
        },
    )
    proc = daemon(config)
    sqs.send_message(
        QueueUrl=queue, MessageBody="hello", MessageSystemAttributes=_trace_attribute(SENT_TRACE)
    )

    def both() -> bool:
        seen = read_records(records)
        return any("Records" in r["event"] for r in seen) and any("account" in r["event"] for r in seen)

    wait_until(both, timeout=20, message="an SQS and a schedule invocation")
    seen = read_records(records)
    from_sqs = next(r for r in seen if "Records" in r["event"])
    scheduled = next(r for r in seen if "account" in r["event"])
    assert from_sqs["trace_id"] == SENT_TRACE  # the message's own trace continues in the handler
    assert FRESH_TRACE.fullmatch(scheduled["trace_id"])
    assert from_sqs["event"]["Records"][0]["eventSourceARN"] == queue_arn
    assert queue_arn.split(":")[4] == MOTO_ACCOUNT
    assert scheduled["event"]["account"] == MOTO_ACCOUNT
    assert scheduled["event"]["resources"] == [f"arn:aws:events:us-east-1:{MOTO_ACCOUNT}:rule/traced-tick"]
    assert {r["invoked_function_arn"] for r in seen} == {function_arn("us-east-1", MOTO_ACCOUNT, "traced")}
    assert all(r["warnings"] == [] for r in seen)
    noisy = [line for line in proc.logs().splitlines() if "WARNING" in line or "segment" in line.lower()]
    assert noisy == []


def _trace_attribute(header: str) -> dict[str, Any]:
    return {"AWSTraceHeader": {"StringValue": header, "DataType": "String"}}


def test_function_with_a_role_calls_aws_as_that_role(tmp_path: Path, daemon: Any, aws: str) -> None:
    role = f"arn:aws:iam::{MOTO_ACCOUNT}:role/app-role"
    config = write_config(
        tmp_path,
        {
            "whoami": {"handler": "fidelity_handlers.whoami", "isolation": "process", "role": role},
            "plain": {"handler": "fidelity_handlers.whoami", "isolation": "process"},
        },
    )
    client = lambda_client(daemon(config))
    assumed = _call(client, "whoami", {})
    assert assumed["arn"] == f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/app-role/whoami"
    assert assumed["at_init"] == assumed["arn"]  # a client made at import has the role too
    assert assumed["access_key"].startswith("ASIA")
    # Without `role`, the daemon's own credentials, as before.
    assert _call(client, "plain", {})["arn"] == f"arn:aws:sts::{MOTO_ACCOUNT}:user/moto"


async def test_role_that_cannot_be_assumed_fails_the_invocation_not_the_daemon(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An STS endpoint nobody listens on: AssumeRole fails as it would without permission to assume.
    clients = AwsClients(AwsConfig(endpoint_url=f"http://127.0.0.1:{free_port()}"))
    role = f"arn:aws:iam::{MOTO_ACCOUNT}:role/forbidden"
    made = [
        _function("bad", "process", clients, role=role),
        _function("plain", "process", clients, handler="context_and_environment"),
    ]
    try:
        with caplog.at_level(logging.INFO):
            for function in made:
                await function.start()  # a worker pool starts regardless
            failed = await invoke(made[0], {})
            again = await invoke(made[0], {})
            ok = await invoke(made[1], {})
    finally:
        for function in made:
            await function.close(0)
        await clients.close()
    assert failed.error is not None and failed.error.error_type == "Runtime.AssumeRoleFailed"
    assert failed.error.error_message.startswith(f"cannot assume role {role}: ")
    assert again.error is not None and again.error.error_type == "Runtime.AssumeRoleFailed"
    lines = [r.getMessage() for r in caplog.records if r.name == "pipelined.credentials"]
    assert lines == [f"bad: {failed.error.error_message}"]  # once, not once per invocation
    assert ok.error is None and ok.value["cwd"] == str(TEST_FUNCTIONS)  # the next function still works


async def test_credentials_are_assumed_again_before_they_expire_and_workers_replaced(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients = AwsClients(AwsConfig(endpoint_url=aws))
    # Every set of credentials counts as expiring: each use assumes the role again, and no worker
    # started with older credentials is used again.
    monkeypatch.setattr(role_credentials, "REFRESH_MARGIN", 10_000.0)
    monkeypatch.setattr(role_credentials, "WORKER_MARGIN", 10_000.0)
    metrics = Metrics()
    role = f"arn:aws:iam::{MOTO_ACCOUNT}:role/short"
    function = _function("fn", "process", clients, metrics=metrics, role=role)
    credentials = function.credentials
    assert isinstance(credentials, RoleCredentials)
    credentials._refresh_margin = role_credentials.REFRESH_MARGIN
    try:
        first = await invoke(function, {})
        second = await invoke(function, {})
    finally:
        await function.close(0)
        await clients.close()
    assert first.error is None and second.error is None
    assert first.value["access_key"] != second.value["access_key"]
    assert first.value["pid"] != second.value["pid"]
    assert first.value["arn"] == second.value["arn"] == f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/short/fn"
    restarts = metrics.registry.get_sample_value(
        "pipelined_worker_restarts_total", {"function": "fn", "cause": "credentials"}
    )
    assert restarts and restarts >= 1


def _function(
    name: str,
    isolation: str,
    clients: AwsClients,
    metrics: Metrics | None = None,
    role: str | None = None,
    handler: str = "whoami",
) -> Function:
    config = FunctionConfig(
        code=TEST_FUNCTIONS, handler=f"fidelity_handlers.{handler}", isolation=isolation, role=role
    )
    function = Function(
        name, config, "us-east-1", metrics.for_function(name) if metrics else None, aws=lambda: clients
    )
    function.load()
    return function
