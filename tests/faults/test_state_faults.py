"""The state store under faults: a full disk, a deleted file, an empty or missing one.

Each test prints its figures (lost, handled while the disk was full, seconds to unready, exit code).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.sources.streams.support import clients
from tests.support import DaemonProcess, read_records, run_cli, wait_until, write_config

Daemon = Callable[..., DaemonProcess]


@pytest_asyncio.fixture(loop_scope="function")
async def kinesis(aws: str) -> AsyncIterator[Any]:
    aws_clients = clients(aws)
    kinesis = await aws_clients.client("kinesis")
    await kinesis.create_stream(StreamName="events", ShardCount=1)
    yield kinesis
    await aws_clients.close()


async def put(kinesis: Any, first: int, count: int) -> list[str]:
    entries = [
        {"Data": json.dumps({"n": n}).encode(), "PartitionKey": f"pk-{n}"}
        for n in range(first, first + count)
    ]
    response = await kinesis.put_records(StreamName="events", Records=entries)
    return [r["SequenceNumber"] for r in response["Records"]]


def delivered(records_file: Path) -> list[str]:
    return [r["kinesis"]["sequenceNumber"] for line in read_records(records_file) for r in line["records"]]


def stream_config(tmp_path: Path, state_dir: Path, **source: Any) -> Path:
    event = {"type": "kinesis", "name": "src", "stream": "events", "batch_size": 5, **source}
    return write_config(
        tmp_path,
        {"fn": {"handler": "stream_handlers.record", "events": [event]}},
        state_dir=str(state_dir),
        shutdown_timeout="3s",
    )


def env(tmp_path: Path) -> dict[str, Any]:
    return {"RECORD_FILE": tmp_path / "records.jsonl", "AWS_MAX_ATTEMPTS": 1}


@contextlib.contextmanager
def small_disk(path: Path) -> Iterator[Callable[[], None] | None]:
    """A 1 MiB tmpfs at `path`; where mounting is not allowed, a file-size limit for the daemon instead."""
    path.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode == 0:
        try:
            yield None
        finally:
            subprocess.run(["umount", "-l", str(path)], check=False)
        return

    def limit() -> None:  # CPython ignores SIGXFSZ: writes past the limit fail with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))

    yield limit


def fill(directory: Path) -> Path:
    """Fill the file system of `directory` until it is full; returns the filler to delete later."""
    filler = directory / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as f:
        while True:
            f.write(b"\0" * 65536)
            f.flush()
    return filler


async def test_a_full_state_disk_makes_the_daemon_unready_pauses_the_stream_and_bounds_shutdown(
    tmp_path: Path, kinesis: Any, daemon: Daemon, cleanup: list[DaemonProcess]
) -> None:
    records_file = tmp_path / "records.jsonl"
    disk = tmp_path / "disk"
    with small_disk(disk) as limit:
        config = stream_config(tmp_path, disk, starting_position="TRIM_HORIZON")
        first = await put(kinesis, 0, 10)
        process = DaemonProcess(config, {k: str(v) for k, v in env(tmp_path).items()})
        process.preexec = limit
        cleanup.append(process)
        process.start()
        wait_until(lambda: set(delivered(records_file)) >= set(first), timeout=20)
        # With the file-size limit instead of a tmpfs, the growing WAL meets the limit by itself.
        filler = fill(disk) if limit is None else disk / "none"
        full_at = time.monotonic()
        rest = await put(kinesis, 10, 40)
        wait_until(lambda: process.get("/readyz")[0] == 503, timeout=15, message="unready on a full disk")
        unready_after = time.monotonic() - full_at
        await asyncio.sleep(1.5)  # the stream would race on here if it did not wait for its checkpoints
        handled_while_full = len(set(delivered(records_file)) - set(first))
        assert "checkpoint(s)" in process.logs() and "cannot write" in process.logs()
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(15)
        stop_seconds = time.monotonic() - stopping
        print(
            f"\nfull state disk: unready after {unready_after:.1f}s, {handled_while_full} record(s) handled "
            f"while full (batch 5), exit {code} after {stop_seconds:.1f}s"
        )
        assert code == 1 and stop_seconds < 10
        assert "could not be written" in process.logs()
        assert handled_while_full <= 10  # the batch that found the disk full, and at most one more
        filler.unlink(missing_ok=True)
        daemon(config, env(tmp_path))
        wait_until(lambda: set(delivered(records_file)) >= set(first + rest), timeout=30)
        lost = len(set(first + rest) - set(delivered(records_file)))
        print(f"full state disk: after space was freed, lost {lost}")
        assert lost == 0


async def test_a_state_file_deleted_while_running_is_restored_and_nothing_starts_from_latest(
    tmp_path: Path, kinesis: Any, daemon: Daemon
) -> None:
    records_file = tmp_path / "records.jsonl"
    config = stream_config(tmp_path, tmp_path / "state", starting_position="LATEST")
    process = daemon(config, env(tmp_path))
    before = await put(kinesis, 0, 5)
    wait_until(lambda: set(delivered(records_file)) >= set(before), timeout=20)
    (tmp_path / "state" / "state.db").unlink()
    wait_until(lambda: "restored" in process.logs(), timeout=10, message="the state file restored")
    assert (tmp_path / "state" / "state.db").exists() and process.get("/readyz")[0] == 200
    during = await put(kinesis, 5, 5)
    wait_until(lambda: set(delivered(records_file)) >= set(during), timeout=20)
    process.stop()
    stopped = await put(kinesis, 10, 5)  # while the daemon is down: a LATEST start would skip them
    daemon(config, env(tmp_path))
    wait_until(lambda: set(delivered(records_file)) >= set(stopped), timeout=20)
    lost = len(set(before + during + stopped) - set(delivered(records_file)))
    print(f"\ndeleted state file: restored, lost {lost}")
    assert lost == 0


def test_an_empty_or_missing_state_file_is_refused_until_reset_state(
    tmp_path: Path, cleanup: list[DaemonProcess]
) -> None:
    state = tmp_path / "state"
    config = write_config(tmp_path, {"fn": {"handler": "handlers.record"}}, state_dir=str(state))
    assert run_cli("dlq", "list", "-c", str(config)).returncode == 0  # creates the store
    (state / "state.db").write_bytes(b"")
    empty = run_cli("dlq", "list", "-c", str(config))
    assert empty.returncode == 2
    assert f"state file {state / 'state.db'} is empty (0 bytes)" in empty.stderr
    assert "--reset-state" in empty.stderr
    (state / "state.db").unlink()
    missing = run_cli("checkpoints", "list", "-c", str(config))
    assert missing.returncode == 2 and "is missing, but" in missing.stderr
    process = DaemonProcess(config)
    process.arguments = ["--reset-state"]
    cleanup.append(process)
    process.start()
    process.stop()
    assert process.wait() == 0 and (state / "state.db").stat().st_size > 0
    assert run_cli("dlq", "list", "-c", str(config)).returncode == 0


@pytest.fixture(autouse=True)
def _records(tmp_path: Path) -> None:
    (tmp_path / "records.jsonl").touch()


@pytest.fixture
def cleanup() -> Iterator[list[DaemonProcess]]:
    """Daemons a test starts by hand; stopped at teardown even when the test fails."""
    started: list[DaemonProcess] = []
    yield started
    for process in started:
        process.stop()
