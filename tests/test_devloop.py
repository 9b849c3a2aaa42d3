"""The development loop: `pipelined dev` hot-reloads saved handlers and follows its config file."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import yaml

from tests.support import DaemonProcess, free_port, read_records, wait_until, write_config
from tests.test_devmode import DevProcess

# Within this long of the save, the next request gets the new code (the promise).
LIVE_WITHIN = 1.0

HANDLER = """import os
import time

VERSION = "{version}"


def handler(event, context):
    time.sleep(float((event.get("queryStringParameters") or {{}}).get("sleep", 0)))
    return {{"statusCode": 200, "body": VERSION}}
"""


def _get(port: int, path: str, timeout: float = 10) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}: {exc.read().decode()}"


def _save(path: Path, text: str) -> float:
    path.write_text(text)
    return time.monotonic()


def _live_after(port: int, path: str, expected: str, saved: float, proc: DaemonProcess) -> float:
    """Seconds from the save until a request returned `expected`."""
    deadline = saved + 15
    while time.monotonic() < deadline:
        if _get(port, path) == expected:
            return time.monotonic() - saved
        time.sleep(0.01)
    raise AssertionError(f"{path} never answered {expected!r}; log:\n{proc.logs()}")


def _code_dir(tmp_path: Path, name: str) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / f"{name}_handler.py").write_text(HANDLER.format(version="v1"))
    return directory


def test_a_saved_handler_answers_within_a_second_and_a_syntax_error_keeps_the_old_code(
    tmp_path: Path,
) -> None:
    inline, process = _code_dir(tmp_path, "inline"), _code_dir(tmp_path, "process")
    gateway = free_port()
    functions = {
        "inline": {
            "code": str(inline),
            "handler": "inline_handler.handler",
            "isolation": "inline",
            "events": [{"type": "http_api", "path": "/inline", "method": "GET"}],
        },
        "process": {
            "code": str(process),
            "handler": "process_handler.handler",
            "isolation": "process",
            "provisioned_concurrency": 1,
            "events": [
                {"type": "http_api", "path": "/process", "method": "GET"},
                {"type": "sqs", "name": "jobs", "queue": "jobs"},
            ],
        },
    }
    config = write_config(tmp_path, functions, gateway={"listen": f"127.0.0.1:{gateway}"})
    proc = DevProcess(config)
    try:
        proc.start()
        # The summary block: routes with full URLs, the queue, the endpoint for boto3, the metrics URL.
        logs = proc.logs()
        assert f"GET http://127.0.0.1:{gateway}/inline" in logs
        assert "sqs jobs (queue jobs)" in logs
        endpoint = (tmp_path / "state" / "dev-endpoint").read_text().strip()
        assert f"AWS endpoint (boto3 endpoint_url=, aws --endpoint-url): {endpoint}" in logs
        assert f"metrics:     http://127.0.0.1:{proc.port}/metrics" in logs
        assert _get(gateway, "/inline") == _get(gateway, "/process") == "v1"

        # Nothing in flight: the warm (provisioned) worker serves v1 until the save replaces it.
        for name, directory in (("inline", inline), ("process", process)):
            saved = _save(directory / f"{name}_handler.py", HANDLER.format(version="v2"))
            latency = _live_after(gateway, f"/{name}", "v2", saved, proc)
            print(f"hot reload ({name}): the new code answered {latency * 1000:.0f} ms after the save")
            assert latency < LIVE_WITHIN, f"{name}: {latency:.2f}s; log:\n{proc.logs()}"

        # A slow request in flight finishes on the code it started with; the next ones get the new code.
        slow: dict[str, str] = {}
        thread = threading.Thread(target=lambda: slow.update(body=_get(gateway, "/process?sleep=1.5")))
        thread.start()
        wait_until(lambda: proc.metric("pipelined_concurrent_executions", function="process") >= 1)
        saved = _save(process / "process_handler.py", HANDLER.format(version="v3"))
        _live_after(gateway, "/process", "v3", saved, proc)
        thread.join(10)
        assert slow == {"body": "v2"}

        broken = HANDLER.format(version="v9").replace("def handler(event, context):", "def handler(event:")
        for name, directory, serving in (("inline", inline, "v2"), ("process", process, "v3")):
            path = directory / f"{name}_handler.py"
            path.write_text(broken)
            line = wait_until(
                lambda path=path: next(
                    (x for x in proc.logs().splitlines() if f"{path}:7: SyntaxError" in x), None
                ),
                message=f"the syntax error of {path}; log:\n{proc.logs()}",
            )
            assert f"({name}: still serving the previous code)" in line
            assert _get(gateway, f"/{name}") == serving
            path.write_text(broken)  # saved again, still broken: not logged again
            fixed = _save(path, HANDLER.format(version="v4"))
            _live_after(gateway, f"/{name}", "v4", fixed, proc)
            assert proc.logs().count(f"{path}:7: SyntaxError") == 1, proc.logs()

        # An error at import (not a syntax error) names the file and line of the failing statement.
        path = inline / "inline_handler.py"
        path.write_text(HANDLER.format(version="v5") + "\nundefined_name\n")
        wait_until(
            lambda: f"{path}:11: NameError: name 'undefined_name' is not defined" in proc.logs(),
            message=f"the import error; log:\n{proc.logs()}",
        )
        assert _get(gateway, "/inline") == "v4"
    finally:
        proc.stop()
    assert proc.wait() == 0


def test_run_watch_recycles_workers_and_a_failing_import_keeps_the_old_workers(tmp_path: Path) -> None:
    code = _code_dir(tmp_path, "worker")
    functions = {"worker": {"code": str(code), "handler": "worker_handler.handler", "isolation": "process"}}
    proc = DaemonProcess(write_config(tmp_path, functions))
    proc.arguments = ["--watch"]
    lam = boto3.client(
        "lambda",
        endpoint_url=f"http://127.0.0.1:{proc.api_port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )

    def body() -> str:
        return str(json.loads(lam.invoke(FunctionName="worker", Payload=b"{}")["Payload"].read())["body"])

    try:
        proc.start()
        assert body() == "v1"
        path = code / "worker_handler.py"
        path.write_text(HANDLER.format(version="v2"))
        wait_until(lambda: body() == "v2", message=f"the new code; log:\n{proc.logs()}")
        # Fails at import in the fresh worker: the worker on v2 keeps serving.
        path.write_text(HANDLER.format(version="v3") + "\nraise RuntimeError('no config')\n")
        wait_until(
            lambda: (
                f"{path}:11: RuntimeError: no config (worker: still serving the previous code)" in proc.logs()
            ),
            message=f"the init error; log:\n{proc.logs()}",
        )
        assert body() == "v2"
        assert proc.logs().count("RuntimeError: no config") == 1, proc.logs()
    finally:
        proc.stop()
    assert proc.wait() == 0


def test_a_config_reload_that_adds_an_sqs_source_creates_its_queue_and_handles_its_messages(
    tmp_path: Path,
) -> None:
    records = tmp_path / "records.jsonl"
    functions: dict[str, Any] = {
        "orders": {"handler": "sqs_handlers.handler", "environment": {"RECORD_FILE": str(records)}},
    }
    config = write_config(tmp_path, functions)
    proc = DevProcess(config)
    try:
        proc.start()
        endpoint = (tmp_path / "state" / "dev-endpoint").read_text().strip()
        sqs = boto3.client(
            "sqs",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert "QueueUrls" not in sqs.list_queues(QueueNamePrefix="added")
        data = yaml.safe_load(config.read_text())
        data["functions"]["orders"]["events"] = [{"type": "sqs", "name": "added", "queue": "added"}]
        config.write_text(yaml.safe_dump(data, sort_keys=False))  # no SIGHUP: the watcher sees the save
        wait_until(lambda: "started orders/added" in proc.logs(), message=f"the reload; log:\n{proc.logs()}")
        assert "dev: created queue added (visibility 60s, DLQ added-dlq after 3 receives)" in proc.logs()
        url = sqs.get_queue_url(QueueName="added")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="after the reload")
        wait_until(lambda: read_records(records), message=f"the message handled; log:\n{proc.logs()}")
        assert read_records(records)[0]["event"]["Records"][0]["body"] == "after the reload"
    finally:
        proc.stop()
    assert proc.wait() == 0
