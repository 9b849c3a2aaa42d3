"""The checkpoints table and its group commit."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

from pipelined.state import Checkpoint, StateStore
from pipelined.state.checkpoints import CHECKPOINT_LINGER


async def test_checkpoints_survive_reopen_and_upsert(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path)
    await store.checkpoints.save(
        [
            Checkpoint("fn/s", "arn:stream", "shard-1", "100"),
            Checkpoint("fn/s", "arn:stream", "shard-2", "200"),
        ]
    )
    await store.checkpoints.save([Checkpoint("fn/s", "arn:stream", "shard-1", "150")])
    await store.close()
    store = await StateStore.open(tmp_path)
    assert [(c.shard, c.sequence) for c in await store.checkpoints.list("fn/s")] == [
        ("shard-1", "150"),
        ("shard-2", "200"),
    ]
    assert await store.checkpoints.delete("fn/s") == 2
    assert await store.checkpoints.list() == []
    await store.close()


async def test_queued_checkpoints_are_on_disk_after_flush_and_the_latest_per_shard_wins(
    tmp_path: Path,
) -> None:
    store = await StateStore.open(tmp_path)
    try:
        store.checkpoints.save_soon([Checkpoint("fn/s", "arn", "shard-1", "1")])
        store.checkpoints.save_soon(
            [Checkpoint("fn/s", "arn", "shard-1", "2"), Checkpoint("fn/s", "arn", "shard-2", "7")]
        )
        await store.checkpoints.flush()
        with sqlite3.connect(tmp_path / "state.db") as db:
            rows = db.execute("SELECT shard, sequence FROM checkpoints ORDER BY shard").fetchall()
        db.close()
        assert rows == [("shard-1", "2"), ("shard-2", "7")]
    finally:
        await store.close()


async def test_close_writes_what_is_still_queued(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path)
    store.checkpoints.save_soon([Checkpoint("fn/s", "arn", "shard-1", "9")])
    await store.close()
    store = await StateStore.open(tmp_path)
    assert [c.sequence for c in await store.checkpoints.list("fn/s")] == ["9"]
    await store.close()


class CountingConnection:
    """The store's real connection, counting the checkpoint writes that go through it."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self.writes = 0

    def execute(self, sql: str, parameters: Any = ()) -> Any:
        if sql.startswith("INSERT INTO checkpoints"):
            self.writes += 1
        return self._connection.execute(sql, parameters)


async def test_a_busy_source_shares_commits_while_one_is_being_written(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path)
    connection = CountingConnection(store.checkpoints._db)
    store.checkpoints._db = connection
    try:
        # Batches settle back to back for 0.4 s: without lingering before each commit, every commit
        # would carry only the batches that settled while the previous one was being written.
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < 0.4:
            store.checkpoints.save_soon([Checkpoint("fn/s", "arn", "shard-1", str(n))])
            n += 1
            await asyncio.sleep(0)
        await store.checkpoints.flush()
        elapsed = time.monotonic() - started
        assert [c.sequence for c in await store.checkpoints.list("fn/s")] == [str(n - 1)]
        assert connection.writes <= elapsed / CHECKPOINT_LINGER + 2, (n, connection.writes)
    finally:
        await store.close()
