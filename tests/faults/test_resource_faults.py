"""Running out of file descriptors, and kill -9 on an SQS pipeline: the pollers go on, nothing is lost.

Prints the figures of each run (handled, lost, duplicated)."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import socket
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.sources.sqs.support import sqs_client
from tests.support import DaemonProcess, read_records, until, wait_until, write_config

Daemon = Callable[..., DaemonProcess]


def bodies(records: Path) -> list[int]:
    return [json.loads(r["body"])["n"] for line in read_records(records) for r in line["event"]["Records"]]


def sqs_config(tmp_path: Path, url: str, records: Path, **function: object) -> Path:
    event = {"type": "sqs", "queue": url, "retry_backoff": {"base": "1s", "max": "1s"}}
    fn = {"handler": "sqs_handlers.handler", "environment": {"RECORD_FILE": str(records)}, "events": [event]}
    return write_config(tmp_path, {"fn": {**fn, **function}})


async def test_a_daemon_out_of_file_descriptors_keeps_polling_and_recovers(tmp_path: Path, aws: str) -> None:
    sqs = sqs_client(aws)
    url = sqs.create_queue(QueueName="fds", Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
    records = tmp_path / "records.jsonl"
    # Idle workers go at once, so the messages need a new worker while no descriptor is left for it.
    config = sqs_config(tmp_path, url, records, isolation="process", idle_timeout="0.2s")
    process = DaemonProcess(config, {"RECORD_FILE": str(records), "AWS_MAX_ATTEMPTS": "2"})
    limit = 160
    process.preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    await asyncio.to_thread(process.start)
    try:
        await _exhaust_and_recover(process, sqs, url, records, limit)
    finally:
        await asyncio.to_thread(process.stop)


async def _exhaust_and_recover(process: DaemonProcess, sqs: Any, url: str, records: Path, limit: int) -> None:
    await until(lambda: process.metric("pipelined_workers", function="fn") == 0, timeout=10)
    idle: list[socket.socket] = []
    for _ in range(limit + 40):  # more than the daemon can hold: it runs out of descriptors
        with_socket = socket.socket()
        try:
            with_socket.connect(("127.0.0.1", process.port))
        except OSError:
            with_socket.close()
            break
        idle.append(with_socket)
    for n in range(20):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
    await until(lambda: "cannot start a worker" in process.logs(), timeout=15, message="worker start failing")
    during = len(set(bodies(records)))
    for held in idle:
        held.close()
    await until(lambda: set(bodies(records)) >= set(range(20)), timeout=60, message="every message handled")
    assert process.process is not None and process.process.poll() is None
    assert "Runtime.Unavailable" in process.logs()  # the failed start was an invocation error
    print(
        f"\nfd exhaustion ({limit}): {len(idle)} idle connections, {during} handled meanwhile, then 20 of 20"
    )


def test_kill_9_loop_on_an_sqs_pipeline_loses_nothing(tmp_path: Path, aws: str, daemon: Daemon) -> None:
    sqs = sqs_client(aws)
    url = sqs.create_queue(QueueName="crash", Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
    records = tmp_path / "records.jsonl"
    config = sqs_config(tmp_path, url, records)
    # `make faults-long` multiplies the counts; moto's queues slow down past ~200 messages.
    scale = int(os.environ.get("PIPELINED_FAULTS_SCALE", "1"))
    total, kills = 120 + 60 * (scale - 1) // 9, 3 * scale
    for start in range(0, total, 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "MessageBody": json.dumps({"n": n})} for n in range(start, start + 10)],
        )
    for kill in range(kills):
        process = daemon(config, {"RECORD_FILE": records, "AWS_MAX_ATTEMPTS": 1})
        target = (kill + 1) * total // (kills + 2)
        wait_until(lambda t=target: len(set(bodies(records))) >= t, timeout=30)  # type: ignore[misc]
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    daemon(config, {"RECORD_FILE": records, "AWS_MAX_ATTEMPTS": 1})
    wait_until(lambda: set(bodies(records)) >= set(range(total)), timeout=60)
    seen = Counter(bodies(records))
    lost = total - len(seen)
    duplicated = sum(n - 1 for n in seen.values())
    print(
        f"\nsqs kill -9 x{kills}: {total} messages, lost {lost}, duplicated {duplicated} (messages in flight)"
    )
    assert lost == 0
