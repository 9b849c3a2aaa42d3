from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pipelined.errors import StateError
from pipelined.state import MIGRATIONS, Checkpoint, NewDeadLetter, StateStore


async def test_new_file_is_wal_with_current_schema(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path / "deep" / "dir")
    assert await store.schema_version() == len(MIGRATIONS)
    await store.close()
    with sqlite3.connect(tmp_path / "deep" / "dir" / "state.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_checkpoints_survive_reopen_and_upsert(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path)
    await store.save_checkpoints(
        [
            Checkpoint("fn/s", "arn:stream", "shard-1", "100"),
            Checkpoint("fn/s", "arn:stream", "shard-2", "200"),
        ]
    )
    await store.save_checkpoints([Checkpoint("fn/s", "arn:stream", "shard-1", "150")])
    await store.close()
    store = await StateStore.open(tmp_path)
    assert [(c.shard, c.sequence) for c in await store.checkpoints("fn/s")] == [
        ("shard-1", "150"),
        ("shard-2", "200"),
    ]
    assert await store.delete_checkpoints("fn/s") == 2
    assert await store.checkpoints() == []
    await store.close()


async def test_schedule_fire_time_never_moves_backwards(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path)
    await store.record_fire("fn/tick", 200.0)
    await store.record_fire("fn/tick", 100.0)
    assert await store.last_fire("fn/tick") == 200.0
    assert await store.last_fire("fn/other") is None
    await store.close()


async def test_dead_letters_roundtrip(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path)
    entry = NewDeadLetter(
        "fn", "tick", {"a": [1, 2]}, {"errorMessage": "x"}, {"version": "1.0"}, "RetriesExhausted", 3, 1.0
    )
    ids = await store.add_dead_letters([entry, entry])
    assert len(ids) == 2
    got = await store.dead_letter(ids[0])
    assert got is not None and got.event == {"a": [1, 2]} and got.attempts == 3
    await store.mark_redrive_failed(ids[0], {"errorMessage": "y"})
    got = await store.dead_letter(ids[0])
    assert got is not None and got.attempts == 4 and got.error == {"errorMessage": "y"}
    assert await store.delete_dead_letters([ids[0]]) == 1
    assert [d.id for d in await store.dead_letters("fn")] == [ids[1]]
    await store.close()


async def test_file_from_a_newer_pipelined_is_refused(tmp_path: Path) -> None:
    await (await StateStore.open(tmp_path)).close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StateError, match="newer than this pipelined"):
        await StateStore.open(tmp_path)


async def test_unusable_path_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateError, match="cannot open state file"):
        await StateStore.open(blocker / "sub")
