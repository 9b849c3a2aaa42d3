"""In-process SQS pipelines for the source tests: a real SourceRunner and source against moto."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest_asyncio

from pipelined.app.assembly import build_function, build_runner
from pipelined.aws import AwsClients
from pipelined.config import AwsConfig, Config, FunctionConfig
from pipelined.dispatch.runner import SourceRunner
from pipelined.functions.function import Function
from pipelined.invoke.service import InvokeService
from pipelined.observe.metrics import Metrics
from pipelined.sources.sqs.source import SqsQueueSource
from pipelined.state import StateStore
from tests.support import TEST_FUNCTIONS, read_records


def sqs_client(endpoint: str) -> Any:
    """A boto3 SQS client for arranging and inspecting queues (no retries: a bad call fails at once)."""
    from botocore.config import Config as BotoConfig

    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=BotoConfig(retries={"max_attempts": 1, "mode": "standard"}),
    )


def queue_depth(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def bodies(records: list[dict[str, Any]]) -> list[str]:
    """The message bodies of every invocation recorded, in order."""
    return [r["body"] for line in records for r in line["event"]["Records"]]


@dataclass
class Pipeline:
    """One function fed by one queue, running in this process."""

    runner: SourceRunner
    source: SqsQueueSource
    metrics: Metrics
    record_file: Path

    def records(self) -> list[dict[str, Any]]:
        """Every invocation the handler recorded: {"event", "request_id", "start", "end"}."""
        return read_records(self.record_file)

    def peak(self) -> int:
        """The most invocations that ran at once, from the handler's own start and end times."""
        edges = sorted((t, step) for r in self.records() for t, step in ((r["start"], 1), (r["end"], -1)))
        running = most = 0
        for _, step in edges:  # at a tie an end (-1) sorts first: back to back is not at once
            running += step
            most = max(most, running)
        return most

    @property
    def active(self) -> int:
        """Invocations in flight now."""
        return self.runner.function.in_flight

    def source_errors(self) -> float:
        """pipelined_source_errors_total of this source."""
        value = self.metrics.registry.get_sample_value(
            "pipelined_source_errors_total", {"function": "fn", "source": self.source.name}
        )
        return float(value or 0.0)

    def count(self, outcome: str) -> float:
        """pipelined_events_total for one outcome of this source."""
        value = self.metrics.registry.get_sample_value(
            "pipelined_events_total", {"function": "fn", "source": self.source.name, "outcome": outcome}
        )
        return float(value or 0.0)


PipelineFactory = Callable[..., Awaitable[Pipeline]]


# The loop of the test itself: the runners' tasks live there.
@pytest_asyncio.fixture(loop_scope="function")
async def pipeline(aws: str, tmp_path: Path) -> AsyncIterator[PipelineFactory]:
    """Factory: start an in-process pipeline for one event source config; all are stopped at teardown."""
    state = await StateStore.open(tmp_path / "state")
    runners: list[SourceRunner] = []
    functions: list[Function] = []
    all_clients: list[AwsClients] = []

    async def start(
        event: dict[str, Any],
        handler: str = "handler",
        endpoint: str | None = None,
        max_attempts: int | None = 1,
        **function: Any,
    ) -> Pipeline:
        """`max_attempts`: botocore's (1: no retries, so a bad call fails at once; None: its default)."""
        clients_config = AwsConfig(endpoint_url=endpoint or aws)
        clients = AwsClients(clients_config, max_attempts=max_attempts)
        all_clients.append(clients)
        record_file = tmp_path / f"records-{len(runners)}.jsonl"
        fn = FunctionConfig(
            handler=f"sqs_handlers.{handler}",
            code=TEST_FUNCTIONS,
            timeout=30,
            environment={"RECORD_FILE": str(record_file)},
            events=[event],
            **function,
        )
        config = Config(functions={"fn": fn}, aws=clients_config)
        metrics = Metrics()
        function = build_function("fn", config, metrics)
        function.load()
        runner = build_runner(
            function,
            config.functions["fn"].events[0],
            config,
            InvokeService(metrics),
            state,
            clients,
            metrics,
        )
        source = runner.source
        assert isinstance(source, SqsQueueSource)
        runners.append(runner)
        await runner.start()
        functions.append(function)
        return Pipeline(runner, source, metrics, record_file)

    yield start
    for runner in runners:
        await runner.stop(5)
    for function in functions:
        await function.close(5)  # its worker processes
    for clients in all_clients:
        await clients.close()
    await state.close()
