"""The `context` argument of a Python handler, as awslambdaric (Lambda's Python runtime) builds it.

Attribute by attribute the same names, types and values as awslambdaric's `LambdaContext` (4.2):
`function_name`, `function_version`, `memory_limit_in_mb` (a string), `log_group_name` and
`log_stream_name` are read from the function's environment, as awslambdaric reads them from
os.environ; `identity` is always an object (its fields None without a Cognito identity);
`client_context` is None or an object; `tenant_id`, `w3c()` and `log()` are there too.

Only the standard library is imported: worker processes import this module in the zygote.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

# The W3C trace-context keys of a ClientContext's `w3c` object that `context.w3c()` returns.
W3C_FIELDS = ("traceparent", "tracestate", "baggage")


class _FromDict:
    """A slotted object whose fields are a JSON object's keys (missing ones None), as in awslambdaric."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, value: Mapping[str, Any]) -> None:
        for field in self.__slots__:
            setattr(self, field, value.get(field))

    def __repr__(self) -> str:
        fields = ",".join(f"{field}={getattr(self, field)}" for field in self.__slots__)
        return f"{type(self).__name__}([{fields}])"


class CognitoIdentity(_FromDict):
    """`context.identity`: the Amazon Cognito identity of the caller (both fields None without one)."""

    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")
    cognito_identity_id: str | None
    cognito_identity_pool_id: str | None

    def __init__(self, value: Mapping[str, Any] | None = None) -> None:
        # Built for every invocation: two assignments, not _FromDict's loop over the slots.
        self.cognito_identity_id = value.get("cognitoIdentityId") if value else None
        self.cognito_identity_pool_id = value.get("cognitoIdentityPoolId") if value else None


class Client(_FromDict):
    """`context.client_context.client`: the calling app, as the mobile SDKs describe it."""

    # In awslambdaric's order, which its repr() follows.
    __slots__ = (  # noqa: RUF023
        "installation_id",
        "app_title",
        "app_version_name",
        "app_version_code",
        "app_package_name",
    )


class ClientContext(_FromDict):
    """`context.client_context`: what the caller sent as Invoke's ClientContext (a JSON object)."""

    __slots__ = ("custom", "env", "client")  # noqa: RUF023 - awslambdaric's order
    client: Client | None

    def __init__(self, value: Mapping[str, Any]) -> None:
        super().__init__(value)
        client = self.client
        self.client = Client(client) if isinstance(client, Mapping) else None


# Shared by every context without W3C fields: w3c() returns a copy, so nobody can change it.
_NO_W3C: dict[str, str] = {}


def _w3c(client_context: Any) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The client context without its `w3c` key, and that key's allowed string fields."""
    if not isinstance(client_context, dict) or "w3c" not in client_context:
        return client_context, _NO_W3C
    rest = dict(client_context)
    raw = rest.pop("w3c")
    if not isinstance(raw, dict):
        return rest, {}
    return rest, {key: raw[key] for key in W3C_FIELDS if isinstance(raw.get(key), str)}


class LambdaContext:
    """The `context` argument, with every attribute of awslambdaric's LambdaContext."""

    def __init__(
        self,
        environment: Mapping[str, str],
        aws_request_id: str,
        invoked_function_arn: str,
        deadline: float,
        client_context: Any = None,
        cognito_identity: Mapping[str, Any] | None = None,
        tenant_id: str | None = None,
    ) -> None:
        # Built once per invocation, in the worker's hot path.
        get = environment.get
        self.aws_request_id = aws_request_id
        self.log_group_name = get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        client_context, self._w3c_fields = _w3c(client_context)
        self.client_context = ClientContext(client_context) if isinstance(client_context, dict) else None
        self.identity = CognitoIdentity(cognito_identity)
        # awslambdaric's deadline (epoch milliseconds), for code that reads it; the remaining time is
        # measured on CLOCK_MONOTONIC, which is system-wide: a deadline the daemon set means the same
        # instant in a worker, and a wall-clock step cannot shorten it.
        self._epoch_deadline_time_in_ms = int((time.time() + deadline - time.monotonic()) * 1000)
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function times out."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def w3c(self) -> dict[str, str]:
        """The W3C trace context (traceparent, tracestate, baggage) the caller sent in its ClientContext."""
        return dict(self._w3c_fields)

    def log(self, msg: Any) -> None:
        """Write `msg` to the function's log, as awslambdaric does without a telemetry log sink."""
        sys.stdout.write(str(msg))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(["
            f"aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},"
            f"log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},"
            f"memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn},"
            f"client_context={self.client_context},"
            f"identity={self.identity},"
            f"tenant_id={self.tenant_id}"
            "])"
        )
