"""The handler's context object, attribute by attribute against awslambdaric's LambdaContext."""

from __future__ import annotations

import time
from typing import Any

import pytest
from awslambdaric.lambda_context import LambdaContext as ReferenceContext

from pipelined.core.context import LambdaContext
from tests.handlers.fidelity_handlers import describe

ENVIRONMENT = {
    "AWS_LAMBDA_FUNCTION_NAME": "fn",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/02/[$LATEST]0123456789abcdef0123456789abcdef",
}
ARN = "arn:aws:lambda:eu-west-1:123456789012:function:fn"
CLIENT_CONTEXTS: list[Any] = [
    None,
    {"custom": {"k": "v"}, "env": {"platform": "Android"}},
    {
        "client": {"installation_id": "i-1", "app_title": "App", "app_package_name": "com.example"},
        "custom": {"tenant": 7},
        "w3c": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "baggage": 3},
    },
    {"w3c": "not an object"},
]


@pytest.mark.parametrize("client_context", CLIENT_CONTEXTS)
@pytest.mark.parametrize("cognito", [None, {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool"}])
def test_context_is_awslambdarics_attribute_by_attribute(
    client_context: Any, cognito: dict[str, str] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    deadline = time.monotonic() + 3
    ours = LambdaContext(ENVIRONMENT, "req-1", ARN, deadline, _copy(client_context), cognito, "tenant-a")
    epoch_deadline = ours._epoch_deadline_time_in_ms
    theirs = ReferenceContext("req-1", _copy(client_context), cognito, epoch_deadline, ARN, "tenant-a")
    # The remaining time is compared below, with a tolerance: two reads are never the same millisecond.
    assert describe(ours) | {"remaining_ms": 0} == describe(theirs) | {"remaining_ms": 0}
    assert abs(ours.get_remaining_time_in_millis() - theirs.get_remaining_time_in_millis()) < 50
    assert abs(epoch_deadline - (time.time() + 3) * 1000) < 50


def test_identity_is_an_object_and_memory_is_the_string_lambda_reads() -> None:
    context = LambdaContext(ENVIRONMENT, "req-1", ARN, time.monotonic() + 1)
    assert context.identity.cognito_identity_id is None
    assert context.identity.cognito_identity_pool_id is None
    assert context.memory_limit_in_mb == "512"
    assert context.client_context is None and context.tenant_id is None and context.w3c() == {}


def test_log_writes_to_the_functions_output(capsys: pytest.CaptureFixture[str]) -> None:
    LambdaContext(ENVIRONMENT, "req-1", ARN, time.monotonic() + 1).log("through context.log\n")
    assert capsys.readouterr().out == "through context.log\n"


def _copy(value: Any) -> Any:
    # awslambdaric pops `w3c` out of the dict it is given: each context gets its own.
    return None if value is None else {**value}
