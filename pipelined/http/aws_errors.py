"""AWS's error responses: REST-JSON's (the `x-amzn-ErrorType` header and a `{"Type", "message"}` body, the
Lambda API) and JSON 1.1's (a `{"__type", "message"}` body, EventBridge)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

# Error shapes whose botocore model names the message `Message` rather than `message`.
_CAPITALISED = frozenset({"ResourceNotFoundException", "ServiceException", "UnknownOperationException"})


class ApiError(Exception):
    """An error the API answers with: HTTP status, AWS error code, message and modelled extra fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}
        self.headers = headers or {}

    def response(self, request_id: str, json_protocol: bool = False) -> web.Response:
        """The HTTP response botocore turns into this error's exception class.

        `json_protocol`: the request was of the JSON 1.x protocol (it named its operation in
        `X-Amz-Target`), whose clients read the error code from the body only.
        """
        if json_protocol:
            return web.Response(
                status=self.status,
                body=json.dumps({"__type": self.code, "message": self.message}).encode(),
                content_type="application/x-amz-json-1.1",
                headers={"x-amzn-RequestId": request_id, **self.headers},
            )
        body: dict[str, Any] = {"Type": "User" if self.status < 500 else "Service", "message": self.message}
        if self.code in _CAPITALISED:
            body["Message"] = self.message
        body.update(self.fields)
        return web.Response(
            status=self.status,
            body=json.dumps(body).encode(),
            content_type="application/json",
            headers={"x-amzn-ErrorType": self.code, "x-amzn-RequestId": request_id, **self.headers},
        )


def not_found(arn: str) -> ApiError:
    """ResourceNotFoundException for a function that is not configured."""
    return ApiError(404, "ResourceNotFoundException", f"Function not found: {arn}")


def invalid_parameter(message: str) -> ApiError:
    """InvalidParameterValueException (400)."""
    return ApiError(400, "InvalidParameterValueException", message)
