"""`pipelined logs FUNCTION`: a function's lines like `aws logs tail`, live from the daemon or its store."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from pipelined.observe.log_store import LogStore, log_path, read_entries
from tests.support import ROOT, forward_environment, run_cli, wait_until, write_config

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def _ticker(tmp_path: Path) -> Path:
    return write_config(
        tmp_path,
        {
            "ticker": {
                "handler": "handlers.record",
                "events": [{"type": "schedule", "expression": "rate(1 second)"}],
            }
        },
    )


class _Follower:
    """`pipelined logs ... --follow` in the background, its lines collected as they arrive."""

    def __init__(self, *args: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelined", "logs", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(10)


def test_logs_follow_sees_new_invocations_live_and_the_store_keeps_them(tmp_path: Path, daemon) -> None:
    config = _ticker(tmp_path)
    env = {"RECORD_FILE": str(tmp_path / "records.jsonl")}
    forward_environment(config, env)
    proc = daemon(config, env=env)
    follower = _Follower("ticker", "--follow", "--since", "0s", "-c", str(config))
    try:
        # --since 0s: nothing from before, so every REPORT it prints came in while it was following.
        def live_reports() -> list[str] | None:
            found = [line for line in follower.lines if "REPORT RequestId:" in line]
            return found[:2] if len(found) >= 2 else None

        reports = wait_until(live_reports, timeout=20, message=f"two live REPORT lines; got {follower.lines}")
    finally:
        follower.stop()
    for line in reports:
        assert re.fullmatch(rf"{STAMP} REPORT RequestId: \S+\tDuration: .*", line), line
    live_ids = [re.search(r"RequestId: (\S+)", line).group(1) for line in reports]  # type: ignore[union-attr]
    for request_id in live_ids:
        assert any(
            re.fullmatch(rf"{STAMP} {request_id} recorded {request_id}", line) for line in follower.lines
        )

    only = run_cli("logs", "ticker", "--since", "5m", "--filter", "recorded", "-c", str(config))
    assert only.returncode == 0, only.stderr
    assert only.stdout and all(" recorded " in line for line in only.stdout.splitlines())
    as_json = run_cli("logs", "ticker", "--since", "5m", "--format", "json", "-c", str(config))
    entries = [json.loads(line) for line in as_json.stdout.splitlines()]
    printed = [
        e for e in entries if e.get("requestId") == live_ids[0] and "recorded" in str(e.get("message"))
    ]
    assert printed, as_json.stdout

    proc.stop()
    # The daemon is gone: the same lines come from STATE_DIR/logs.
    stored = run_cli("logs", "ticker", "-c", str(config))
    assert stored.returncode == 0, stored.stderr
    for request_id in live_ids:
        assert f"START RequestId: {request_id} Version: $LATEST" in stored.stdout
        assert f"{request_id} recorded {request_id}" in stored.stdout


def test_logs_of_an_unknown_function_or_a_bad_since_are_usage_errors(tmp_path: Path) -> None:
    config = _ticker(tmp_path)
    unknown = run_cli("logs", "nope", "-c", str(config))
    assert unknown.returncode == 2 and "no function named 'nope'" in unknown.stderr
    bad = run_cli("logs", "ticker", "--since", "yesterday", "-c", str(config))
    assert bad.returncode == 2 and "--since 'yesterday': expected a duration" in bad.stderr


def test_the_store_is_bounded_by_size_and_retention(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_size=64 * 1024, retention=3600)
    logger = logging.getLogger("tests.log_store")
    logger.propagate = False
    logger.addHandler(store)
    try:
        for n in range(3000):
            logger.warning("line %d %s", n, "x" * 60, extra={"function": "busy", "request_id": f"r{n}"})
            if n % 100 == 0:
                store.flush()
        old = logging.makeLogRecord(
            {"msg": "ancient", "levelname": "INFO", "created": time.time() - 7200, "function": "quiet"}
        )
        store.handle(old)
        logger.warning("recent", extra={"function": "quiet", "request_id": "r-new"})
        store.flush()
    finally:
        logger.removeHandler(store)
        store.close()
    current = log_path(tmp_path, "busy")
    rotated = current.with_name(current.name + ".1")
    assert rotated.exists() and rotated.stat().st_size + current.stat().st_size < 3 * 64 * 1024
    kept = list(read_entries(tmp_path, "busy"))
    assert kept[-1].text.startswith("line 2999 ") and len(kept) < 3000  # the oldest were dropped
    assert [e.text for e in read_entries(tmp_path, "quiet", retention=3600)] == ["recent"]
