"""`pipelined dev`: the pipeline against an embedded AWS-protocol server (moto) on loopback.

`pipelined dev -c FILE` starts moto, creates every queue, bucket (notifying its queue), table, stream
and topic the config names, and runs the daemon against it (`DevDaemon`): it prints one summary block
at start, creates what a reloaded config adds before applying it, and hot-reloads saved code and config
(app/watch.py). The server's URL is written to `state_dir/dev-endpoint`, where `pipelined dev send` /
`dev put` (another terminal) find it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from pipelined.app.daemon import Daemon
from pipelined.app.summary import Ports, summary
from pipelined.aws import AwsClients, describe, resolve_queue_url
from pipelined.config import Config, S3Source
from pipelined.errors import PipelinedError, UsageError
from pipelined.observe.logs import setup_logging
from pipelined.sources.registry import event_type
from pipelined.sources.resources import DevResources, queue_name
from pipelined.sources.s3.via_sqs import setup_notifications

log = logging.getLogger("pipelined.dev")

ENDPOINT_FILE = "dev-endpoint"
# Dev queues get a dead-letter queue, so a poison message ends somewhere visible instead of looping.
DLQ_MAX_RECEIVES = 3


def wanted_resources(config: Config) -> DevResources:
    """Every AWS resource the config's event sources and destinations name (each event type says which)."""
    found = DevResources()
    for fn in config.functions.values():
        found.add_destination(fn.on_failure)
        # Where asynchronous invocations' records go (Invoke with InvocationType=Event).
        found.add_destination(fn.async_.destinations.on_success)
        found.add_destination(fn.async_.destinations.on_failure)
        for source in fn.events:
            add = event_type(source.type).dev_resources
            if add is not None:
                add(source, fn, found)
    return found


def _notified_queues(config: Config) -> set[str]:
    """The queues S3 notifies for the config's `s3` sources read via SQS."""
    return {
        queue_name(source.via.sqs)
        for fn in config.functions.values()
        for source in fn.events
        if isinstance(source, S3Source) and source.via.sqs is not None
    }


async def create_resources(
    config: Config, clients: AwsClients, existing: DevResources | None = None
) -> list[str]:
    """Create what `wanted_resources` lists and point buckets at their queues; one line per resource.

    With `existing` (what an earlier call created, updated here), only what is new is created.
    """
    wanted = wanted_resources(config)
    if existing is not None:
        wanted = existing.missing(wanted)
    lines: list[str] = []
    for name, visibility in sorted(wanted.queues.items()):
        sqs = await clients.client("sqs")
        attributes: dict[str, str] = {}
        fifo = name.endswith(".fifo")
        if fifo:
            attributes.update(FifoQueue="true", ContentBasedDeduplication="true")
        if visibility is not None:
            dlq = name.removesuffix(".fifo") + "-dlq" + (".fifo" if fifo else "")
            dlq_url = (await sqs.create_queue(QueueName=dlq, Attributes=dict(attributes)))["QueueUrl"]
            arn = (await sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"]))[
                "Attributes"
            ]
            policy = json.dumps({"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": DLQ_MAX_RECEIVES})
            attributes.update(VisibilityTimeout=str(min(43200, visibility)), RedrivePolicy=policy)
            lines.append(
                f"queue {name} (visibility {visibility}s, DLQ {dlq} after {DLQ_MAX_RECEIVES} receives)"
            )
        else:
            lines.append(f"queue {name}")
        await sqs.create_queue(QueueName=name, Attributes=attributes)
    if wanted.buckets:
        s3 = await clients.client("s3")
        for bucket in sorted(wanted.buckets):
            with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                if config.aws.region == "us-east-1":
                    await s3.create_bucket(Bucket=bucket)
                else:
                    await s3.create_bucket(
                        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": config.aws.region}
                    )
            lines.append(f"bucket {bucket}")
    if wanted.buckets or wanted.queues.keys() & _notified_queues(config):
        # Idempotent: a reload may point an existing bucket at a new queue, or a new bucket at an old one.
        lines += [f"notification {line}" for line in await setup_notifications(config, clients)]
    for table in sorted(wanted.tables):
        dynamodb = await clients.client("dynamodb")
        await dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        lines.append(f"table {table} (hash key pk: S, stream NEW_AND_OLD_IMAGES)")
    for stream in sorted(wanted.streams):
        kinesis = await clients.client("kinesis")
        await kinesis.create_stream(StreamName=stream, ShardCount=1)
        lines.append(f"stream {stream} (1 shard)")
    for topic in sorted(wanted.topics):
        sns = await clients.client("sns")
        await sns.create_topic(Name=topic)
        lines.append(f"topic {topic}")
    if existing is not None:
        existing.update(wanted)  # only once all of it exists: a failed reload tries again next time
    return lines


# --- the embedded server ---------------------------------------------------------------------------


def _local_environment(endpoint: str, region: str) -> None:
    """Point every AWS client of this process (handlers' boto3 included) at the dev server only."""
    # Fixed dummy credentials: real ones must never be used, nor needed, against the local server.
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION=region,
        AWS_ENDPOINT_URL=endpoint,
    )
    os.environ.pop("AWS_PROFILE", None)


@contextlib.contextmanager
def embedded_server(port: int) -> Iterator[str]:
    """moto on 127.0.0.1:`port` (0: a free one) in this process; yields its URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise UsageError("dev mode needs moto: pip install 'pipelined[dev]'") from None
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        server.start()
    except OSError as exc:
        raise UsageError(f"cannot start the dev server on port {port}: {exc}") from exc
    host, bound = server.get_host_and_port()
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.stop()


class DevDaemon(Daemon):
    """The daemon of `pipelined dev`: creates what a reloaded config adds, prints the summary at start."""

    def __init__(
        self, config: Config, endpoint: str, created: DevResources, out: TextIO, watch: bool
    ) -> None:
        super().__init__(config, watch=watch)
        self.endpoint = endpoint
        self.created = created
        self.out = out

    async def prepare(self, config: Config) -> None:
        clients = AwsClients(config.aws)
        try:
            lines = await create_resources(config, clients, self.created)
        except Exception as exc:
            raise PipelinedError(f"dev mode: creating resources failed: {describe(exc)}") from exc
        finally:
            await clients.close()
        for line in lines:
            log.info("dev: created %s", line)

    def on_ready(self) -> None:
        api = self.api.server.port if self.api is not None and self.api.server is not None else None
        ports = Ports(self.http.port if self.http else 0, self.gateway.port, api)
        self.out.write(summary(self.config, self.endpoint, ports, self.watch))
        self.out.flush()


async def _run(config: Config, endpoint: str, out: TextIO, watch: bool) -> int:
    created = DevResources()
    daemon = DevDaemon(config, endpoint, created, out, watch)
    await daemon.prepare(config)
    path = config.state_dir / ENDPOINT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(endpoint + "\n")
    try:
        return await daemon.run()
    finally:
        path.unlink(missing_ok=True)


def run_dev(config: Config, port: int, out: TextIO, watch: bool = True) -> int:
    """`pipelined dev`: embedded server, resources, then the daemon until stopped; the exit code."""
    setup_logging(config.logging.level, config.logging.format)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    with embedded_server(port) as endpoint:
        # AWS_ENDPOINT_URL reaches every client whose config names no endpoint, so the config stays as
        # the file says and a reload (SIGHUP) does not look like a change of AWS settings.
        _local_environment(endpoint, config.aws.region)
        if config.aws.endpoint_url is not None:
            log.warning(
                "dev mode: using the dev server instead of aws.endpoint_url %s (a reload would switch back "
                "to it: leave it out of configs run in dev mode)",
                config.aws.endpoint_url,
            )
            config = config.model_copy(
                update={"aws": config.aws.model_copy(update={"endpoint_url": endpoint})}
            )
        with contextlib.suppress(KeyboardInterrupt):
            return asyncio.run(_run(config, endpoint, out, watch))
    return 130


# --- poking the running dev server -------------------------------------------------------------------


def dev_endpoint(config: Config) -> str:
    """The URL of the dev server running for this config (UsageError when there is none)."""
    path = config.state_dir / ENDPOINT_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise UsageError(
            f"no dev server is running for {config.source_path} ({path} not found); "
            f"start one with: pipelined dev -c {config.source_path}"
        ) from None


async def send(config: Config, queue: str, body: str, group_id: str | None) -> str:
    """Send one message to a queue of the dev server; returns its message id."""
    clients = AwsClients(config.aws.model_copy(update={"endpoint_url": dev_endpoint(config)}), max_attempts=1)
    try:
        sqs = await clients.client("sqs")
        url = await resolve_queue_url(sqs, queue)
        params: dict[str, Any] = {"QueueUrl": url, "MessageBody": body}
        if url.endswith(".fifo"):
            params.update(MessageGroupId=group_id or "default", MessageDeduplicationId=uuid.uuid4().hex)
        response = await sqs.send_message(**params)
        return str(response["MessageId"])
    except PipelinedError:
        raise
    except Exception as exc:
        raise UsageError(f"sending to {queue}: {describe(exc)}") from exc
    finally:
        await clients.close()


async def put(config: Config, bucket: str, key: str, data: bytes) -> str:
    """Upload one object to a bucket of the dev server; returns its ETag."""
    clients = AwsClients(config.aws.model_copy(update={"endpoint_url": dev_endpoint(config)}), max_attempts=1)
    try:
        s3 = await clients.client("s3")
        response = await s3.put_object(Bucket=bucket, Key=key, Body=data)
        return str(response.get("ETag", "")).strip('"')
    except PipelinedError:
        raise
    except Exception as exc:
        raise UsageError(f"uploading to s3://{bucket}/{key}: {describe(exc)}") from exc
    finally:
        await clients.close()


def _read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"{name}: {exc.strerror or exc}") from exc


def dev_command(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    """`pipelined dev [send|put]`: run the dev pipeline, or poke the running one."""
    if args.dev_command is None:
        return run_dev(config, args.port, out, not args.no_watch)
    _local_environment(dev_endpoint(config), config.aws.region)
    if args.dev_command == "send":
        body = _read("-").decode() if args.body == "-" else args.body
        message_id = asyncio.run(send(config, args.queue, body, args.group_id))
        out.write(f"sent {message_id}\n")
    else:
        etag = asyncio.run(put(config, args.bucket, args.key, _read(args.file)))
        out.write(f"put s3://{args.bucket}/{args.key} (ETag {etag})\n")
    return 0
