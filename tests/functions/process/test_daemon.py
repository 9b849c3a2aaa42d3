"""End to end: `pipelined run` with `isolation: process`, a schedule source and real worker processes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import yaml

from tests.support import read_records, wait_until, write_config


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def isolated_config(tmp_path: Path, records: Path, greeting: str = "hi") -> Path:
    every_second = [{"type": "schedule", "name": "tick", "expression": "rate(1 second)"}]
    return write_config(
        tmp_path,
        {
            "ticker": {
                "handler": "handlers.record",
                "provisioned_concurrency": 1,
                "environment": {"RECORD_FILE": str(records), "GREETING": greeting},
                "events": every_second,
            },
            "crasher": {
                "handler": "isolation_handlers.segfault",
                "events": [{**every_second[0], "maximum_retry_attempts": 0}],
            },
        },
        isolation="process",
    )


def test_schedule_runs_in_a_provisioned_worker_while_a_crashing_function_is_contained(
    tmp_path: Path, daemon
) -> None:
    records = tmp_path / "records.jsonl"
    proc = daemon(isolated_config(tmp_path, records), env={"PIPELINED_DAEMON_SECRET": "x"})
    # Provisioned: initialised during start-up, before the first event.
    assert proc.metric("pipelined_cold_starts_total", function="ticker") == 1
    wait_until(lambda: len(read_records(records)) >= 3, timeout=10, message="three firings")
    seen = read_records(records)
    assert len({r["pid"] for r in seen}) == 1 and seen[0]["pid"] != proc.process.pid
    assert {r["init_count"] for r in seen} == {1} and {r["env_greeting"] for r in seen} == {"hi"}
    request_id = seen[0]["aws_request_id"]
    logs = wait_until(lambda: f"REPORT RequestId: {request_id}" in proc.logs() and proc.logs())
    report = next(line for line in logs.splitlines() if f"REPORT RequestId: {request_id}" in line)
    assert "Max Memory Used: " in report and "Init Duration" not in report
    assert f"{request_id} recorded {request_id}" in logs  # the worker's print, attributed
    # The segfaulting function fails every firing; the daemon and the other function carry on.
    crashes = {"function": "crasher", "cause": "crash"}
    wait_until(lambda: proc.metric("pipelined_worker_restarts_total", **crashes) >= 2, timeout=10)
    assert "Runtime exited with error: signal: segmentation fault" in proc.logs()
    assert proc.get("/healthz")[0] == 200
    count = len(read_records(records))
    wait_until(lambda: len(read_records(records)) > count, timeout=5, message="ticker still firing")
    proc.stop()
    assert proc.wait() == 0
    wait_until(lambda: not alive(seen[0]["pid"]), timeout=5, message="the worker stopped with the daemon")


def test_reload_replaces_a_changed_functions_workers(tmp_path: Path, daemon) -> None:
    records = tmp_path / "records.jsonl"
    config = isolated_config(tmp_path, records)
    proc = daemon(config)
    wait_until(lambda: read_records(records), timeout=10, message="a first firing")
    old_pid = read_records(records)[0]["pid"]
    data = yaml.safe_load(config.read_text())
    data["functions"]["ticker"]["environment"]["GREETING"] = "bonjour"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    proc.send_signal(signal.SIGHUP)
    wait_until(
        lambda: any(r["env_greeting"] == "bonjour" for r in read_records(records)),
        timeout=10,
        message="reload",
    )
    new = [r for r in read_records(records) if r["env_greeting"] == "bonjour"]
    assert {r["pid"] for r in new} != {old_pid}
    wait_until(lambda: not alive(old_pid), timeout=5, message="the old worker stopped")


def test_handler_failing_to_initialise_fails_start_up(tmp_path: Path, daemon) -> None:
    config = write_config(
        tmp_path,
        {
            "broken": {
                "handler": "isolation_handlers.info",
                "isolation": "process",
                "environment": {"FAIL_INIT": "1"},
                "events": [{"type": "schedule", "expression": "rate(1 hour)"}],
            }
        },
    )
    proc = daemon(config, wait_ready=False)
    assert proc.wait() == 2
    assert "start-up failed: function broken: RuntimeError: init failed on purpose" in proc.logs()
