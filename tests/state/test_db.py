"""The state file: WAL, migrations (including upgrading an older file in place), refusals."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pipelined.errors import StateError
from pipelined.state import MIGRATIONS, Checkpoint, Marker, StateStore


async def test_new_file_is_wal_with_current_schema(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path / "deep" / "dir")
    assert await store.schema_version() == len(MIGRATIONS)
    await store.close()
    with sqlite3.connect(tmp_path / "deep" / "dir" / "state.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


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


def version_1_file(path: Path, rows: list[tuple[str, str, str, str, float]]) -> None:
    """A state file as pipelined wrote it before markers had a table of their own."""
    with sqlite3.connect(path) as db:
        db.executescript(f"BEGIN;\n{MIGRATIONS[0]}\nPRAGMA user_version = 1;\nCOMMIT;")
        db.executemany("INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?)", rows)
    db.close()


async def test_a_version_1_file_upgrades_in_place_and_its_markers_move_to_their_table(
    tmp_path: Path,
) -> None:
    version_1_file(
        tmp_path / "state.db",
        [
            ("fn/src", "arn:stream", "shard-1", "100", 1.0),
            ("fn/src", "*", "*", "LATEST", 2.0),
            ("fn/m", "mqtt-subscription", "client-1", "sensors/#", 3.0),
        ],
    )
    store = await StateStore.open(tmp_path)
    try:
        assert await store.schema_version() == len(MIGRATIONS)
        assert await store.checkpoints.list() == [Checkpoint("fn/src", "arn:stream", "shard-1", "100", 1.0)]
        assert await store.markers.list() == [
            Marker("fn/m", "mqtt-subscription", "client-1", "sensors/#", 3.0),
            Marker("fn/src", "*", "*", "LATEST", 2.0),
        ]
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT shard, sequence FROM checkpoints").fetchall() == [("shard-1", "100")]
    db.close()
