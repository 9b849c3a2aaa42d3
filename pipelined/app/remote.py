"""`pipelined invoke` through a running daemon's Lambda API (botocore's own client, signed when needed)."""

from __future__ import annotations

import base64
import json
import socket
from dataclasses import dataclass
from typing import Any

from pipelined.config import Config
from pipelined.config.types import connect_host, local_url
from pipelined.errors import PipelinedError


@dataclass(frozen=True, slots=True)
class RemoteResult:
    """What the API answered: status, the payload (parsed), whether it is a function error, the log tail."""

    status: int
    payload: Any
    function_error: str | None
    log: str | None


def api_endpoint(config: Config) -> str | None:
    """The URL of the daemon's Lambda API if something accepts connections there, else None."""
    settings = config.api
    if settings.listen is None:
        return None
    try:
        with socket.create_connection((connect_host(settings.host), settings.port), timeout=0.5):
            pass
    except OSError:
        return None
    return local_url(settings.host, settings.port)


def api_client(config: Config, service: str, endpoint: str, read_timeout: float) -> Any:
    """A botocore client of the daemon's API listener (`lambda`, `events`), signed with the first of
    `api.credentials` (unsigned without any), and no retries: the caller sees every answer."""
    from botocore import UNSIGNED
    from botocore.config import Config as BotoConfig
    from botocore.session import get_session

    credentials = config.api.credentials
    options: dict[str, Any] = {"retries": {"total_max_attempts": 1}, "read_timeout": read_timeout}
    if not credentials:
        options["signature_version"] = UNSIGNED
    return get_session().create_client(
        service,
        region_name=config.aws.region,
        endpoint_url=endpoint,
        aws_access_key_id=credentials[0].access_key_id if credentials else None,
        aws_secret_access_key=credentials[0].secret_access_key if credentials else None,
        config=BotoConfig(**options),
    )


def invoke_remote(
    config: Config, endpoint: str, function: str, payload: str, invocation_type: str, log_type: str | None
) -> RemoteResult:
    """Invoke through the API; PipelinedError carries the API's error code and message."""
    from botocore.exceptions import BotoCoreError, ClientError

    # A synchronous invocation may run for the function's whole timeout.
    client = api_client(config, "lambda", endpoint, read_timeout=config.functions[function].timeout + 10)
    arguments: dict[str, Any] = {
        "FunctionName": function,
        "InvocationType": invocation_type,
        "Payload": payload,
    }
    if log_type:
        arguments["LogType"] = log_type
    try:
        response = client.invoke(**arguments)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise PipelinedError(f"{error.get('Code')}: {error.get('Message')}") from None
    except BotoCoreError as exc:
        raise PipelinedError(f"cannot reach the daemon's API at {endpoint}: {exc}") from None
    body = response["Payload"].read()
    log = response.get("LogResult")
    return RemoteResult(
        status=response["StatusCode"],
        payload=json.loads(body) if body else None,
        function_error=response.get("FunctionError"),
        log=base64.b64decode(log).decode(errors="replace") if log else None,
    )
