"""The record Lambda sends to an asynchronous invocation's destination (on success and on failure)."""

from __future__ import annotations

from typing import Any

from pipelined.core.identity import VERSION
from pipelined.core.lambda_errors import LambdaError
from pipelined.core.timestamps import now_millis

SUCCESS = "Success"
RETRIES_EXHAUSTED = "RetriesExhausted"
EVENT_AGE_EXCEEDED = "EventAgeExceeded"


def invocation_record(
    request_id: str,
    function_arn: str,
    condition: str,
    invoke_count: int,
    request_payload: Any,
    response: Any = None,
    error: LambdaError | None = None,
) -> dict[str, Any]:
    """Lambda's destination record; `response` is the handler's return value (on success)."""
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": VERSION}
    if error is not None:
        response_context["functionError"] = "Unhandled"
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": now_millis(),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn}:{VERSION}",
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": request_payload,
        "responseContext": response_context,
    }
    if error is not None:
        record["responsePayload"] = error.payload()
    elif condition == SUCCESS:
        record["responsePayload"] = response
    return record
