"""Node.js functions behind the daemon's front doors: a schedule into the DLQ, SQS partial batch failure."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipelined.app.assembly import build_function, build_runner
from pipelined.aws import AwsClients
from pipelined.config import AwsConfig, Config, FunctionConfig
from pipelined.invoke.service import InvokeService
from pipelined.observe.metrics import Metrics
from pipelined.state import StateStore
from tests.functions.runtime_api.conftest import NODE
from tests.sources.sqs.support import queue_depth, sqs_client
from tests.support import read_records, run_cli, until, wait_until, write_config


def test_a_thrown_error_reaches_the_dlq_with_nodes_error_object(
    tmp_path: Path, daemon: Callable[..., Any]
) -> None:
    records = tmp_path / "records.jsonl"
    tick = {"type": "schedule", "name": "tick", "expression": "rate(1 second)", "input": {"fail": True}}
    config = write_config(
        tmp_path,
        {
            "thrower": {
                "runtime": "nodejs20.x",
                "handler": "handlers.record",
                "code": str(NODE / "misc"),
                "environment": {"RECORD_FILE": str(records)},
                "events": [{**tick, "maximum_retry_attempts": 0}],
            }
        },
    )
    proc = daemon(config)
    labels = {"function": "thrower", "source": "tick"}
    wait_until(
        lambda: proc.metric("pipelined_events_total", outcome="dead_lettered", **labels) >= 1, timeout=15
    )
    listed = run_cli("dlq", "list", "-c", str(config))
    assert "thrower/tick" in listed.stdout and "asked to fail" in listed.stdout, listed.stdout
    entry_id = listed.stdout.split("\t", 1)[0]
    shown = json.loads(run_cli("dlq", "show", entry_id, "-c", str(config)).stdout)
    assert shown["event"] == {"fail": True}
    error = shown["error"]
    assert (error["errorType"], error["errorMessage"]) == ("Error", "asked to fail")
    assert error["trace"][0] == "Error: asked to fail"
    request_id = read_records(records)[0]["requestId"]
    logs = wait_until(lambda: f"REPORT RequestId: {request_id}" in proc.logs() and proc.logs())
    # The function error line names its request, like every line of an invocation but START/END/REPORT.
    assert f"ERROR [thrower] {request_id} Error: asked to fail" in logs
    assert "Max Memory Used: " in logs


async def test_sqs_partial_batch_failure_from_a_node_handler(aws: str, tmp_path: Path) -> None:
    sqs = sqs_client(aws)
    url = sqs.create_queue(QueueName="node-partial", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    bodies = ["ok-1", "bad-2", "ok-3"]
    sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies)]
    )
    records = tmp_path / "records.jsonl"
    event = {"type": "sqs", "queue": "node-partial", "report_batch_item_failures": True, "batch_size": 10}
    event["maximum_batching_window"] = "1s"
    fn = FunctionConfig(
        runtime="nodejs20.x",
        handler="sqs.handler",
        code=NODE / "misc",
        environment={"RECORD_FILE": str(records)},
        events=[event],
    )
    clients_config = AwsConfig(endpoint_url=aws)
    config = Config(functions={"fn": fn}, aws=clients_config)
    metrics = Metrics()
    function = build_function("fn", config, metrics)
    function.load()
    state = await StateStore.open(tmp_path / "state")
    clients = AwsClients(clients_config, max_attempts=1)
    runner = build_runner(
        function, config.functions["fn"].events[0], config, InvokeService(metrics), state, clients, metrics
    )
    await runner.start()
    try:
        seen = lambda: sorted(r["body"] for line in read_records(records) for r in line["Records"])  # noqa: E731
        await until(lambda: seen() == sorted(bodies), timeout=15, message="all three delivered")
        # The two reported fine are deleted; the failed one waits out its visibility timeout.
        await until(lambda: queue_depth(sqs, url) == (0, 1), timeout=10, message="only bad-2 left")
    finally:
        await runner.stop(5)
        await function.close(0)
        await clients.close()
        await state.close()
