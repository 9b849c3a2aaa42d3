"""`pipelined invoke` talks to a running daemon's Lambda API, and runs in-process when there is none."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from tests.support import DaemonProcess, read_records, run_cli, wait_until, write_config


def test_invoke_goes_through_the_running_daemons_api(
    daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    records = tmp_path / "records.jsonl"
    config = write_config(
        tmp_path, {"fn": {"handler": "api_handlers.echo"}, "failing": {"handler": "api_handlers.fail"}}
    )
    process = daemon(config, {"RECORD_FILE": records})
    payload = tmp_path / "event.json"
    payload.write_text('{"a": 1}')
    result = run_cli("invoke", "fn", "-c", str(config), "--payload", f"@{payload}", "--log-type", "Tail")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["event"] == {"a": 1}
    assert result.stderr.startswith("START RequestId: ") and "REPORT RequestId: " in result.stderr
    assert process.metric("pipelined_invocations_total", function="fn", source="api") == 1

    failed = run_cli("invoke", "failing", "-c", str(config), "--payload", '{"n": 4}')
    assert failed.returncode == 1
    error = json.loads(failed.stdout)
    # The error object as the Lambda API returns it (and as an in-process invocation prints it).
    assert list(error) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert error["errorMessage"] == "cannot handle 4"

    queued = run_cli("invoke", "fn", "-c", str(config), "--invocation-type", "Event", "--payload", '{"b": 2}')
    assert queued.returncode == 0, queued.stderr
    assert json.loads(queued.stdout) == {"StatusCode": 202}
    wait_until(lambda: any(r["event"] == {"b": 2} for r in read_records(records)), message="queued event ran")
    assert process.metric("pipelined_invocations_total", function="fn", source="async") == 1

    dry = run_cli("invoke", "fn", "-c", str(config), "--invocation-type", "DryRun")
    assert json.loads(dry.stdout) == {"StatusCode": 204}
    missing = run_cli("invoke", "other", "-c", str(config))
    assert missing.returncode == 2 and "no function 'other'" in missing.stderr


def test_invoke_without_a_daemon_runs_in_process(tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    config = write_config(tmp_path, {"fn": {"handler": "api_handlers.echo"}})
    result = run_cli(
        "invoke", "fn", "-c", str(config), "--invocation-type", "Event", env={"RECORD_FILE": str(records)}
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"StatusCode": 202}
    assert [r["event"] for r in read_records(records)] == [{}]
    assert "REPORT RequestId" in result.stderr
