"""End-to-end: `pipelined run` as a subprocess with schedules firing real handlers."""

from __future__ import annotations

import itertools
import json
import re
import signal
import socket
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from tests.support import DaemonProcess, read_records, run_cli, wait_until, write_config


def schedule_config(tmp_path: Path, handler: str = "handlers.record", **event: object) -> Path:
    return write_config(
        tmp_path,
        {
            "ticker": {
                "handler": handler,
                "environment": {"GREETING": "hi"},
                "memory_mb": 256,
                "events": [{"type": "schedule", "name": "tick", "expression": "rate(1 second)", **event}],
            }
        },
    )


def test_schedule_fires_handler_with_eventbridge_event_and_lambda_context(tmp_path: Path, daemon) -> None:
    records = tmp_path / "records.jsonl"
    proc = daemon(schedule_config(tmp_path), env={"RECORD_FILE": records})
    wait_until(lambda: len(read_records(records)) >= 2, timeout=10, message="two firings")
    first = read_records(records)[0]
    event = first["event"]
    assert set(event) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    }
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == ["arn:aws:events:us-east-1:000000000000:rule/ticker-tick"]
    assert event["time"].endswith("Z") and event["detail"] == {}
    assert first["function_name"] == "ticker" and first["function_version"] == "$LATEST"
    assert first["invoked_function_arn"] == "arn:aws:lambda:us-east-1:000000000000:function:ticker"
    assert first["memory_limit_in_mb"] == "256"  # the string Lambda's runtime reads from the environment
    assert first["log_group_name"] == "/aws/lambda/ticker"
    assert 9000 < first["remaining_ms"] <= 10000
    assert first["env_greeting"] == "hi"
    # Module-level init ran once: the second invocation reuses the warm module.
    assert {r["init_count"] for r in read_records(records)} == {1}
    request_id = first["aws_request_id"]
    logs = wait_until(lambda: "REPORT RequestId: " + request_id in proc.logs() and proc.logs())
    assert f"START RequestId: {request_id} Version: $LATEST" in logs
    assert f"END RequestId: {request_id}" in logs
    assert f"{request_id} recorded {request_id}" in logs  # the handler's print, attributed
    report = next(line for line in logs.splitlines() if f"REPORT RequestId: {request_id}" in line)
    for part in (
        "Duration: ",
        "Billed Duration: ",
        "Memory Size: 256 MB",
        "Max Memory Used: ",
        "Init Duration: ",
    ):
        assert part in report


def test_metrics_and_health_endpoints(tmp_path: Path, daemon) -> None:
    records = tmp_path / "records.jsonl"
    proc = daemon(schedule_config(tmp_path), env={"RECORD_FILE": records})
    assert proc.get("/healthz") == (200, "ok\n")
    status, body = proc.get("/readyz")
    assert status == 200 and json.loads(body) == {
        "ready": True,
        "sources": {"ticker/tick": True},
        "state": True,
    }
    labels = {"function": "ticker", "source": "tick"}
    wait_until(lambda: proc.metric("pipelined_invocations_total", **labels) >= 2, timeout=10)
    assert proc.metric("pipelined_events_total", outcome="succeeded", **labels) >= 2
    assert proc.metric("pipelined_duration_seconds_count", **labels) >= 2
    assert proc.metric("pipelined_errors_total", **labels) == 0
    assert proc.metric("pipelined_build_info") == 1


def test_failing_handler_is_retried_then_parked_and_redrive_reinvokes_it(tmp_path: Path, daemon) -> None:
    records = tmp_path / "records.jsonl"
    flag = tmp_path / "fixed"
    env = {"RECORD_FILE": str(records), "FIXED_FLAG": str(flag)}
    config = schedule_config(
        tmp_path,
        "handlers.fail_unless_fixed",
        maximum_retry_attempts=1,
        expression="rate(1 hour)",
        input={"order": 42},
    )
    # A rate(1 hour) schedule whose last firing was over an hour ago fires once at start (catch_up: latest).
    proc = daemon(config, env=env)
    proc.stop()
    state = tmp_path / "state" / "state.db"
    import sqlite3

    with sqlite3.connect(state) as db:
        db.execute("INSERT OR REPLACE INTO schedule_state VALUES ('ticker/tick', ?)", (time.time() - 3700,))
    proc = daemon(config, env=env)
    labels = {"function": "ticker", "source": "tick"}
    wait_until(
        lambda: proc.metric("pipelined_events_total", outcome="dead_lettered", **labels) == 1, timeout=15
    )
    assert [r["event"] for r in read_records(records)] == [{"order": 42}, {"order": 42}]  # 1 try + 1 retry
    assert proc.metric("pipelined_events_total", outcome="retried", **labels) == 1

    listed = run_cli("dlq", "list", "-c", str(config))
    assert listed.returncode == 0, listed.stderr
    assert "ticker/tick\tRetriesExhausted\tattempts=2\tnot fixed yet" in listed.stdout
    entry_id = listed.stdout.split("\t", 1)[0]
    shown = json.loads(run_cli("dlq", "show", entry_id, "-c", str(config)).stdout)
    assert shown["event"] == {"order": 42}
    assert shown["failureRecord"]["requestPayload"] == {"order": 42}
    assert shown["failureRecord"]["requestContext"]["approximateInvokeCount"] == 2
    # The failure record names the last attempt by the request id of its START line, as Lambda's does.
    starts = re.findall(r"\[ticker\] START RequestId: (\S+) Version: \$LATEST", proc.logs())
    assert len(starts) == 2 and shown["failureRecord"]["requestContext"]["requestId"] == starts[-1]
    assert shown["failureRecord"]["requestContext"]["functionArn"].endswith(":function:ticker:$LATEST")
    assert shown["error"]["requestId"] == starts[-1]
    assert shown["error"]["errorType"] == "RuntimeError"

    again = run_cli("dlq", "redrive", entry_id, "-c", str(config), env=env)
    assert again.returncode == 1 and "failed again: not fixed yet" in again.stdout
    flag.touch()
    fixed = run_cli("dlq", "redrive", "--all", "-c", str(config), env=env)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "redrove 1 of 1" in fixed.stdout
    assert read_records(records)[-1]["event"] == {"order": 42}
    assert "0 parked event(s)" in run_cli("dlq", "list", "-c", str(config)).stdout


def test_sigterm_mid_invocation_drains_and_exits_zero(tmp_path: Path, daemon) -> None:
    records = tmp_path / "records.jsonl"
    proc = daemon(
        schedule_config(tmp_path, "handlers.slow"), env={"RECORD_FILE": records, "SLEEP_SECONDS": "2"}
    )
    wait_until(lambda: any(r["phase"] == "start" for r in read_records(records)), timeout=10)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    phases = [r["phase"] for r in read_records(records)]
    assert phases.count("end") == phases.count("start")  # every started invocation finished
    assert "draining" in proc.logs() and "stopped" in proc.logs()


def test_second_sigint_forces_exit(tmp_path: Path, daemon) -> None:
    records = tmp_path / "records.jsonl"
    proc = daemon(
        schedule_config(tmp_path, "handlers.slow"), env={"RECORD_FILE": records, "SLEEP_SECONDS": "30"}
    )
    wait_until(lambda: read_records(records), timeout=10)
    proc.send_signal(signal.SIGINT)
    wait_until(lambda: "draining" in proc.logs(), timeout=5)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 130
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(("catch_up", "expected"), [("none", 0), ("latest", 1), ("all", 3)])
def test_restart_honours_catch_up_from_persisted_state(
    tmp_path: Path, daemon, catch_up: str, expected: int
) -> None:
    records = tmp_path / "records.jsonl"
    config = schedule_config(tmp_path, catch_up=catch_up, expression="rate(1 minute)")
    proc = daemon(config, env={"RECORD_FILE": records})
    proc.stop()
    # Pretend the daemon last fired 3.5 minutes ago: three firings were missed while it was down.
    import sqlite3

    with sqlite3.connect(tmp_path / "state" / "state.db") as db:
        db.execute("INSERT OR REPLACE INTO schedule_state VALUES ('ticker/tick', ?)", (time.time() - 210,))
    proc = daemon(config, env={"RECORD_FILE": records})
    if expected:
        wait_until(lambda: len(read_records(records)) >= expected, timeout=10)
    else:
        wait_until(lambda: "next firing at" in proc.logs(), timeout=10)
        time.sleep(1)  # give a wrong catch-up firing the chance to show up
    fired = sorted(datetime.fromisoformat(r["event"]["time"]).timestamp() for r in read_records(records))
    assert len(fired) == expected
    # Missed firings keep the schedule's cadence and all lie in the downtime (catch-up firings may
    # run concurrently, like EventBridge's async invokes, so their order is not asserted).
    assert all(b - a == 60 for a, b in itertools.pairwise(fired))
    assert all(t <= time.time() for t in fired)


def test_sighup_reload_adds_sources_and_rejects_an_invalid_file(tmp_path: Path, daemon) -> None:
    records = tmp_path / "records.jsonl"
    config = schedule_config(tmp_path, expression="rate(1 hour)")
    proc = daemon(config, env={"RECORD_FILE": records})
    data = yaml.safe_load(config.read_text())
    data["functions"]["second"] = {
        **data["functions"]["ticker"],
        "events": [{"type": "schedule", "name": "fast", "expression": "rate(1 second)"}],
    }
    config.write_text(yaml.safe_dump(data))
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: any(r["function_name"] == "second" for r in read_records(records)), timeout=10)
    _, body = proc.get("/readyz")
    assert json.loads(body)["sources"] == {"ticker/tick": True, "second/fast": True}

    config.write_text(config.read_text().replace("rate(1 second)", "rate(1 fortnight)"))
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload rejected" in proc.logs(), timeout=10)
    assert "rate(1 fortnight)" in proc.logs()
    count = len(read_records(records))
    wait_until(
        lambda: len(read_records(records)) > count + 1, timeout=10, message="old pipeline still running"
    )
    assert proc.process is not None and proc.process.poll() is None


def test_systemd_notify_ready_watchdog_and_stopping(tmp_path: Path, daemon) -> None:
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(10)
    try:
        proc = daemon(
            schedule_config(tmp_path, expression="rate(1 hour)"),
            env={"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "200000", "RECORD_FILE": tmp_path / "r"},
        )
        messages: list[str] = []
        while not any(m.startswith("WATCHDOG=1") for m in messages):
            messages.append(sock.recv(4096).decode())
        assert messages[0].startswith("READY=1")
        proc.send_signal(signal.SIGHUP)
        while not any(m.startswith("RELOADING=1") for m in messages):
            messages.append(sock.recv(4096).decode())
        proc.send_signal(signal.SIGTERM)
        while "STOPPING=1" not in messages:
            messages.append(sock.recv(4096).decode())
        assert proc.wait(10) == 0
    finally:
        sock.close()


def test_json_log_format_gives_one_object_per_line(tmp_path: Path, daemon) -> None:
    records = tmp_path / "records.jsonl"
    config = write_config(
        tmp_path,
        {
            "ticker": {
                "handler": "handlers.record",
                "events": [{"type": "schedule", "expression": "rate(1 second)"}],
            }
        },
        logging={"format": "json"},
    )
    proc = daemon(config, env={"RECORD_FILE": records})
    wait_until(lambda: '"type": "platform.report"' in proc.logs(), timeout=10)
    lines = [json.loads(line) for line in proc.logs().splitlines() if line.strip()]
    # START/END/REPORT are Lambda's platform records.
    report = next(line for line in lines if line.get("type") == "platform.report")
    assert report["function"] == "ticker" and report["record"]["requestId"]
    assert report["record"]["status"] == "success" and report["record"]["metrics"]["durationMs"] >= 0
    printed = next(line for line in lines if line.get("message", "").startswith("recorded "))
    assert printed["requestId"] == printed["message"].split()[1] and printed["level"] == "INFO"


def test_unknown_handler_module_fails_start_with_a_clear_message(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"f": {"handler": "nope.handler", "events": []}})
    proc = DaemonProcess(config).start(wait_ready=False)
    assert proc.wait(20) == 2
    assert "module 'nope' not found" in proc.logs()
    assert "Traceback" not in proc.logs()


def test_sighup_restarts_a_changed_function_after_its_in_flight_invocation_finishes(
    tmp_path: Path, daemon
) -> None:
    records = tmp_path / "records.jsonl"
    config = schedule_config(tmp_path, "handlers.slow")
    proc = daemon(config, env={"RECORD_FILE": records, "SLEEP_SECONDS": "1.5"})
    wait_until(lambda: any(r["phase"] == "start" for r in read_records(records)), timeout=10)
    data = yaml.safe_load(config.read_text())
    data["functions"]["ticker"]["environment"] = {"GREETING": "changed"}
    config.write_text(yaml.safe_dump(data))
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: any(r["env_greeting"] == "changed" for r in read_records(records)), timeout=15)
    first = read_records(records)[0]
    ends = [r for r in read_records(records) if r["phase"] == "end"]
    # The invocation that was running during the reload finished with the old configuration.
    assert any(r["aws_request_id"] == first["aws_request_id"] and r["env_greeting"] == "hi" for r in ends)
    assert "reloaded" in proc.logs()

    del data["functions"]["ticker"]["events"][0]
    config.write_text(yaml.safe_dump(data))
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: json.loads(proc.get("/readyz")[1])["sources"] == {}, timeout=15)
