"""The `context` argument of a Python handler, written once for inline and worker invocations.

Only the standard library is imported: worker processes import this module in the zygote.
"""

from __future__ import annotations

import time
from typing import Any


class LambdaContext:
    """The `context` argument, with every attribute of Lambda's Python context object."""

    def __init__(
        self,
        function_name: str,
        invoked_function_arn: str,
        memory_limit_in_mb: int,
        aws_request_id: str,
        log_group_name: str,
        log_stream_name: str,
        deadline: float,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.identity: Any = None
        self.client_context: Any = None
        # time.monotonic() of the function timeout; CLOCK_MONOTONIC is system-wide, so a worker's
        # deadline set by the daemon means the same instant.
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function times out."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _Client:
    """`context.client_context.client`: the calling app, as the mobile SDKs describe it."""

    def __init__(self, client: dict[str, Any]) -> None:
        self.installation_id = client.get("installation_id")
        self.app_title = client.get("app_title")
        self.app_version_name = client.get("app_version_name")
        self.app_version_code = client.get("app_version_code")
        self.app_package_name = client.get("app_package_name")


class ClientContext:
    """`context.client_context`: what the caller sent as Invoke's ClientContext (a JSON object)."""

    def __init__(self, value: dict[str, Any]) -> None:
        client = value.get("client")
        self.client = _Client(client) if isinstance(client, dict) else None
        self.custom = value.get("custom")
        self.env = value.get("env")


def client_context(value: Any) -> ClientContext | None:
    """The handler's `context.client_context` for the JSON object a caller sent (None if none)."""
    return ClientContext(value) if isinstance(value, dict) else None
