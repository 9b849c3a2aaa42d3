"""AWS clients (aiobotocore) shared by sources and destinations, built from the `aws:` config."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from pipelined.config import AwsConfig
from pipelined.core.identity import parse_arn

MAX_POOL_CONNECTIONS = 1000


class AwsClients:
    """Opens one client per service on first use and closes them all together."""

    def __init__(self, config: AwsConfig, max_attempts: int | None = None) -> None:
        self._config = config
        self._session = get_session()
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[str, Any] = {}
        retries: dict[str, Any] = {"mode": "standard"}
        if max_attempts is not None:
            retries["max_attempts"] = max_attempts
        # Every SQS poller holds a connection for up to 20 s (long poll) and all sources share one
        # client per service: botocore's default pool of 10 would make heartbeats and deletes wait
        # behind idle long polls. Connections are still opened only when needed.
        self._botocore_config = AioConfig(
            retries=retries, connect_timeout=5, read_timeout=30, max_pool_connections=MAX_POOL_CONNECTIONS
        )

    async def client(self, service: str) -> Any:
        """The shared client for `service` (sqs, sns, s3, dynamodbstreams, kinesis, ...)."""
        if service not in self._clients:
            creator = self._session.create_client(
                service,
                region_name=self._config.region,
                endpoint_url=self._config.endpoint_url or None,
                config=self._botocore_config,
            )
            self._clients[service] = await self._stack.enter_async_context(creator)
        return self._clients[service]

    async def close(self) -> None:
        """Close every client opened so far."""
        self._clients.clear()
        await self._stack.aclose()


def aws_error(exc: BaseException) -> Mapping[str, Any]:
    """The `Error` part of a botocore ClientError ({} for anything else): its `Code` and `Message`."""
    response = getattr(exc, "response", None)
    error = response.get("Error") if isinstance(response, Mapping) else None
    return error if isinstance(error, Mapping) else {}


def describe(exc: BaseException) -> str:
    """A one-line description of an AWS call's failure."""
    error = aws_error(exc)
    if error.get("Code"):
        return f"{error['Code']}: {error.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


async def resolve_queue_url(sqs: Any, queue: str) -> str:
    """A queue URL from a URL, an ARN or a bare name."""
    if queue.startswith(("http://", "https://")):
        return queue
    if queue.startswith("arn:"):
        arn = parse_arn(queue)
        response = await sqs.get_queue_url(QueueName=arn["resource"], QueueOwnerAWSAccountId=arn["account"])
    else:
        response = await sqs.get_queue_url(QueueName=queue)
    return str(response["QueueUrl"])
