"""`pipelined dev`: an embedded moto, the config's resources created, and `dev send` / `dev put`."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelined.config import load_config
from pipelined.devmode import wanted_resources
from pipelined.sources.resources import queue_name
from tests.support import ROOT, DaemonProcess, read_records, run_cli, wait_until, write_config


class DevProcess(DaemonProcess):
    """`pipelined dev -c CONFIG` as a subprocess."""

    command = "dev"


@pytest.fixture
def dev_config(tmp_path: Path) -> Iterator[Path]:
    records = str(tmp_path / "records.jsonl")
    functions = {
        "orders": {
            "handler": "sqs_handlers.handler",
            "environment": {"RECORD_FILE": records},
            "events": [{"type": "sqs", "name": "orders", "queue": "orders"}],
        },
        "files": {
            "handler": "sqs_handlers.s3_handler",
            "environment": {"RECORD_FILE": records},
            "events": [
                {
                    "type": "s3",
                    "name": "files",
                    "bucket": "dev-files",
                    "prefix": "in/",
                    "via": {"sqs": "file-events"},
                }
            ],
        },
    }
    yield write_config(tmp_path, functions)


def test_dev_mode_runs_the_pipeline_and_the_dev_commands_poke_it(tmp_path: Path, dev_config: Path) -> None:
    proc = DevProcess(dev_config)
    try:
        proc.start()
        endpoint_file = tmp_path / "state" / "dev-endpoint"
        assert endpoint_file.read_text().startswith("http://127.0.0.1:")
        sent = run_cli("dev", "send", "-c", str(dev_config), "orders", '{"n": 1}')
        assert sent.returncode == 0 and sent.stdout.startswith("sent "), sent.stderr
        (tmp_path / "hello.txt").write_text("hello")
        put = run_cli(
            "dev", "put", "-c", str(dev_config), "dev-files", "in/hello.txt", str(tmp_path / "hello.txt")
        )
        assert put.returncode == 0 and "s3://dev-files/in/hello.txt" in put.stdout, put.stderr
        records = tmp_path / "records.jsonl"
        wait_until(lambda: len(read_records(records)) == 2, message=f"both delivered; log:\n{proc.logs()}")
        events = {r["eventSource"]: r for line in read_records(records) for r in line["event"]["Records"]}
        assert events["aws:sqs"]["body"] == '{"n": 1}'
        assert events["aws:s3"]["s3"]["object"]["key"] == "in/hello.txt"
        assert "created queue orders (visibility 60s, DLQ orders-dlq after 3 receives)" in proc.logs()
        # A reload keeps talking to the dev server (through AWS_ENDPOINT_URL), not to real AWS.
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reloaded:" in proc.logs(), message="the reload")
        assert run_cli("dev", "send", "-c", str(dev_config), "orders", "again").returncode == 0
        wait_until(
            lambda: len(read_records(records)) == 3, message=f"delivered after reload; log:\n{proc.logs()}"
        )
    finally:
        proc.stop()
    assert proc.wait() == 0
    assert not (tmp_path / "state" / "dev-endpoint").exists()


def test_dev_commands_without_a_running_dev_server_say_how_to_start_one(dev_config: Path) -> None:
    result = run_cli("dev", "send", "-c", str(dev_config), "orders", "hi")
    assert result.returncode == 2
    assert "no dev server is running" in result.stderr and f"pipelined dev -c {dev_config}" in result.stderr


def test_dev_mode_creates_what_the_config_names(tmp_path: Path) -> None:
    functions = {
        "f": {
            "handler": "handlers.record",
            "timeout": "20s",
            "on_failure": {"destination": "arn:aws:sns:us-east-1:123456789012:alerts"},
            "async": {
                "destinations": {
                    "on_success": {"destination": "arn:aws:sqs:us-east-1:123456789012:done"},
                    "on_failure": {"destination": "function:f"},
                }
            },
            "events": [
                {"type": "sqs", "queue": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs.fifo"},
                {
                    "type": "s3",
                    "bucket": "bkt1",
                    "via": {"sqs": "arn:aws:sqs:us-east-1:123456789012:b1-events"},
                },
                {
                    "type": "dynamodb_stream",
                    "table": "users",
                    "on_failure": {"destination": "arn:aws:sqs:us-east-1:123456789012:failed-users"},
                },
                {"type": "kinesis", "stream": "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"},
            ],
        }
    }
    resources = wanted_resources(load_config(write_config(tmp_path, functions)))
    assert resources.queues == {"jobs.fifo": 120, "b1-events": 120, "failed-users": None, "done": None}
    assert (resources.buckets, resources.tables, resources.streams, resources.topics) == (
        {"bkt1"},
        {"users"},
        {"clicks"},
        {"alerts"},
    )
    assert queue_name("arn:aws:sqs:us-east-1:123456789012:q") == queue_name("http://h/123/q") == "q"


def test_the_example_pipeline_is_valid() -> None:
    result = run_cli("validate", str(ROOT / "config" / "example.yaml"))
    assert result.returncode == 0, result.stderr
    assert "2 schedule, 1 sqs, 1 s3" in result.stdout
