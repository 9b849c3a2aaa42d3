"""AWS clients (aiobotocore) shared by sources and destinations, built from the `aws:` config."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from pipelined.config import AwsConfig
from pipelined.core.identity import DEFAULT_ACCOUNT_ID, parse_arn

log = logging.getLogger("pipelined.aws")

MAX_POOL_CONNECTIONS = 1000


# Seconds a call other than a long poll may take to answer before it fails (and is retried): an
# endpoint that accepts connections and never answers must show in readiness within seconds.
CALL_TIMEOUT = 5.0
CONNECT_TIMEOUT = 3.0
# Long polls wait up to 20 s for messages by design; their read timeout leaves room for that.
LONG_POLL_TIMEOUT = 30.0
# A probe of a long-polling source's endpoint: one attempt, a short timeout.
PROBE_TIMEOUT = 2.0
# Finding the account may also mean looking for credentials (instance metadata): bounded as a whole.
ACCOUNT_TIMEOUT = 3.0


class AwsClients:
    """Opens one client per service (and kind of call) on first use and closes them all together."""

    def __init__(self, config: AwsConfig, max_attempts: int | None = None) -> None:
        self._config = config
        self._session = get_session()
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[tuple[str, str], Any] = {}
        self._account: str | None = config.account_id
        retries: dict[str, Any] = {"mode": "standard"}
        if max_attempts is not None:
            retries["max_attempts"] = max_attempts
        # Every SQS poller holds a connection for up to 20 s (long poll) and all sources share one
        # client per service: botocore's default pool of 10 would make heartbeats and deletes wait
        # behind idle long polls. Connections are still opened only when needed.
        pool = MAX_POOL_CONNECTIONS
        self._configs = {
            "call": AioConfig(
                retries=retries,
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=CALL_TIMEOUT,
                max_pool_connections=pool,
            ),
            "long_poll": AioConfig(
                retries=retries,
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=LONG_POLL_TIMEOUT,
                max_pool_connections=pool,
            ),
            "probe": AioConfig(
                retries={"mode": "standard", "max_attempts": 1},
                connect_timeout=PROBE_TIMEOUT,
                read_timeout=PROBE_TIMEOUT,
                max_pool_connections=4,
            ),
        }

    async def client(self, service: str, kind: str = "call") -> Any:
        """The shared client for `service` (sqs, sns, s3, dynamodbstreams, kinesis, ...).

        `kind` "long_poll" is for calls that wait by design (SQS ReceiveMessage), "probe" for a quick
        check that the endpoint answers at all; everything else uses "call" and its short timeout.
        """
        key = (service, kind)
        if key not in self._clients:
            creator = self._session.create_client(
                service,
                region_name=self._config.region,
                endpoint_url=self._config.endpoint_url or None,
                config=self._configs[kind],
            )
            self._clients[key] = await self._stack.enter_async_context(creator)
        return self._clients[key]

    async def account_id(self) -> str:
        """The account in pipelined's ARNs: `aws.account_id`, else the endpoint's own, else 000000000000.

        The endpoint is asked once (STS GetCallerIdentity, one short attempt); when it cannot say, one
        log line tells which account is used instead.
        """
        if self._account is None:
            try:
                identity = await asyncio.wait_for(self._caller_identity(), ACCOUNT_TIMEOUT)
                self._account = str(identity["Account"])
            except Exception as exc:
                log.warning(
                    "cannot ask the endpoint for its account id (%s); using %s (aws.account_id sets one)",
                    describe(exc),
                    DEFAULT_ACCOUNT_ID,
                )
                self._account = DEFAULT_ACCOUNT_ID
        return self._account

    async def _caller_identity(self) -> Any:
        sts = await self.client("sts", "probe")
        return await sts.get_caller_identity()

    async def close(self) -> None:
        """Close every client opened so far."""
        self._clients.clear()
        await self._stack.aclose()


class LazyClients:
    """AwsClients made on first use, for a command that may need none (`pipelined invoke`)."""

    def __init__(self, config: AwsConfig) -> None:
        self.config = config
        self.clients: AwsClients | None = None

    def __call__(self) -> AwsClients:
        if self.clients is None:
            self.clients = AwsClients(self.config)
        return self.clients

    async def close(self) -> None:
        """Close the clients if they were made."""
        if self.clients is not None:
            await self.clients.close()


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
