"""Helpers for the stream tests: the real engine and dispatcher in-process, AWS through moto."""

from __future__ import annotations

import base64
import json
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelined.app.assembly import build_function, runner_for
from pipelined.aws import AwsClients
from pipelined.config import AwsConfig, Config, DynamoDBStreamSource, FunctionConfig, KinesisSource
from pipelined.core.identity import DEFAULT_ACCOUNT_ID, role_arn
from pipelined.dispatch.runner import SourceRunner
from pipelined.invoke.service import InvokeService
from pipelined.observe.metrics import Metrics
from pipelined.sources.streams.dynamodb import DynamoDBStreamAdapter
from pipelined.sources.streams.engine import StreamSource
from pipelined.sources.streams.kinesis import KinesisAdapter
from pipelined.sources.streams.model import StreamAdapter
from pipelined.state import StateStore
from pipelined.state.interfaces import LocalCheckpointer
from tests.support import TEST_FUNCTIONS, read_records


def clients(endpoint: str) -> AwsClients:
    """AWS clients on moto that do not retry (a bad request fails at once instead of after ~10 s)."""
    return AwsClients(AwsConfig(region="us-east-1", endpoint_url=endpoint), max_attempts=1)


def data_of(record: dict[str, Any]) -> Any:
    """The JSON a Kinesis record carries."""
    return json.loads(base64.b64decode(record["kinesis"]["data"]))


def stored_checkpoints(state_dir: Path) -> dict[str, str]:
    """shard -> checkpoint, read straight from the state file (works while a daemon holds it)."""
    with sqlite3.connect(state_dir / "state.db") as db:
        return {shard: seq for shard, seq in db.execute("SELECT shard, sequence FROM checkpoints")}


@dataclass
class Pipeline:
    """A running source, its runner and what the handler saw."""

    runner: SourceRunner
    source: StreamSource
    state: StateStore
    metrics: Metrics
    # Where the handler appends each invocation's records (it runs in a worker process).
    calls_file: Path

    @property
    def calls(self) -> list[list[dict[str, Any]]]:
        """The Records list of every invocation, in order."""
        return [line["records"] for line in read_records(self.calls_file)]

    def delivered(self) -> list[dict[str, Any]]:
        """Every record the handler was given (duplicates included), in invocation order."""
        return [r for call in self.calls for r in call]

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, {"function": "fn", "source": "src", **labels})
        return float(value or 0.0)

    async def checkpoints(self) -> dict[str, str]:
        await self.state.checkpoints.flush()
        return {c.shard: c.sequence for c in await self.state.checkpoints.list("fn/src")}


def kinesis_config(stream: str, **options: Any) -> KinesisSource:
    return KinesisSource(type="kinesis", name="src", stream=stream, **options)


def dynamodb_config(table: str, **options: Any) -> DynamoDBStreamSource:
    return DynamoDBStreamSource(type="dynamodb_stream", name="src", table=table, **options)


@asynccontextmanager
async def pipeline(
    tmp_path: Path,
    config: KinesisSource | DynamoDBStreamSource,
    handler: str,
    endpoint: str | None = None,
    adapter: Callable[[AwsClients | None], StreamAdapter] | None = None,
    discovery_interval: float = 0.3,
    shutdown_timeout: float = 5.0,
    environment: dict[str, str] | None = None,
) -> AsyncIterator[Pipeline]:
    """Run `config` with `stream_handlers.<handler>` until the block ends, then stop like the daemon."""
    state = await StateStore.open(tmp_path / "state")
    calls_file = tmp_path / f"calls-{uuid.uuid4().hex}.jsonl"
    aws = clients(endpoint) if endpoint else None
    # A recorded adapter needs no AWS; the (sqlite) destination is still given clients, never opened.
    unused_clients = clients("http://127.0.0.1:9")
    try:
        if adapter is not None:
            chosen = adapter(aws)
        elif isinstance(config, KinesisSource):
            assert aws is not None
            chosen = KinesisAdapter(
                aws, config.stream, role_arn(DEFAULT_ACCOUNT_ID, "fn"), bool(config.filter_patterns)
            )
        else:
            chosen = DynamoDBStreamAdapter(
                aws,
                table=config.table,
                stream_arn=config.stream_arn,
                filter_data=bool(config.filter_patterns),
            )
        checkpointer = LocalCheckpointer(state.checkpoints, state.markers)
        source = StreamSource("fn", config, chosen, checkpointer, discovery_interval=discovery_interval)
        app_config = Config(
            functions={
                "fn": FunctionConfig(
                    handler=f"stream_handlers.{handler}",
                    code=TEST_FUNCTIONS,
                    environment={"RECORD_FILE": str(calls_file), **(environment or {})},
                    events=[config],
                )
            }
        )
        metrics = Metrics()
        function = build_function("fn", app_config, metrics)
        function.load()
        runner = runner_for(
            function, source, config, InvokeService(metrics), state, aws or unused_clients, metrics
        )
        await runner.start()
        try:
            yield Pipeline(runner, source, state, metrics, calls_file)
        finally:
            await runner.stop(shutdown_timeout)
            await function.close(shutdown_timeout)  # its worker processes
    finally:
        if aws is not None:
            await aws.close()
        await unused_clients.close()
        await state.close()
