"""`/status` and `pipelined status`: what the running daemon holds, in the figures Prometheus scrapes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import run_cli, wait_until, write_config


def test_status_shows_functions_sources_and_parked_events(tmp_path: Path, daemon) -> None:
    config = write_config(
        tmp_path,
        {
            "ticker": {
                "handler": "handlers.fail",
                "events": [
                    {
                        "type": "schedule",
                        "name": "tick",
                        "expression": "rate(1 second)",
                        "maximum_retry_attempts": 0,
                    }
                ],
            },
            "idle": {"handler": "handlers.record", "reserved_concurrency": 3},
        },
    )
    proc = daemon(config)
    wait_until(lambda: proc.metric("pipelined_dead_letters", function="ticker") >= 2, timeout=20)
    assert proc.metric("pipelined_dead_letters", function="idle") == 0

    status, body = proc.get("/status")
    assert status == 200
    document = json.loads(body)
    assert document["ready"] is True and document["state"]["healthy"] is True
    functions = {f["name"]: f for f in document["functions"]}
    assert set(functions) == {"ticker", "idle"}
    assert functions["ticker"]["dead_letters"] >= 2
    assert functions["idle"]["reserved_concurrency"] == 3 and functions["idle"]["sources"] == []
    (tick,) = functions["ticker"]["sources"]
    assert tick["name"] == "tick" and tick["type"] == "schedule" and tick["healthy"] is True
    assert tick["errors"] >= 2 and tick["invocations"] >= tick["errors"]

    printed = run_cli("status", "-c", str(config))
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.splitlines()
    assert lines[0].startswith("pipelined ") and ": ready," in lines[0]
    ticker_row = next(line.split() for line in lines if line.startswith("ticker "))
    assert ticker_row[:3] == ["ticker", "python", ticker_row[2]] and int(ticker_row[-1]) >= 2
    assert any(line.split()[:3] == ["ticker/tick", "schedule", "up"] for line in lines)
    as_json = run_cli("status", "-c", str(config), "--format", "json")
    assert {f["name"] for f in json.loads(as_json.stdout)["functions"]} == {"ticker", "idle"}


def test_status_without_a_daemon_says_so(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"idle": {"handler": "handlers.record"}})
    result = run_cli("status", "-c", str(config))
    assert result.returncode == 2
    assert "no daemon answers on http://127.0.0.1:" in result.stderr and "pipelined run" in result.stderr
