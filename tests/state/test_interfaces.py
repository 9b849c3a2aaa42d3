"""The local, single-daemon checkpointer and leases."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pipelined.state import Checkpoint, StateStore
from pipelined.state.interfaces import LocalCheckpointer, LocalLeases
from pipelined.state.markers import STREAM_RESET


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[StateStore]:
    store = await StateStore.open(tmp_path)
    yield store
    await store.close()


def on_disk(state: StateStore) -> dict[str, str]:
    with sqlite3.connect(state.path) as db:
        rows = dict(db.execute("SELECT shard, sequence FROM checkpoints").fetchall())
    db.close()
    return rows


async def test_load_returns_the_positions_of_one_stream_of_one_source(state: StateStore) -> None:
    checkpointer = LocalCheckpointer(state.checkpoints, state.markers)
    await checkpointer.pin(
        [
            Checkpoint("fn/s", "arn:new", "shard-1", "100"),
            Checkpoint("fn/s", "arn:old", "shard-0", "SHARD_END"),
            Checkpoint("fn/other", "arn:new", "shard-1", "5"),
        ]
    )
    with sqlite3.connect(state.path) as db:
        assert db.execute("SELECT count(*) FROM checkpoints").fetchone() == (3,)  # pinned: on disk at once
    db.close()
    assert await checkpointer.load("fn/s", "arn:new") == {"shard-1": "100"}
    assert await checkpointer.load("fn/s", "arn:gone") == {}


async def test_reset_to_is_the_pending_reset_marker(state: StateStore) -> None:
    checkpointer = LocalCheckpointer(state.checkpoints, state.markers)
    assert await checkpointer.reset_to("fn/s") is None
    await state.markers.put("fn/s", STREAM_RESET, STREAM_RESET, "TRIM_HORIZON")
    assert await checkpointer.reset_to("fn/s") == "TRIM_HORIZON"
    assert await checkpointer.load("fn/s", STREAM_RESET) == {}


async def test_save_soon_is_group_committed_and_durable_after_flush(state: StateStore) -> None:
    checkpointer = LocalCheckpointer(state.checkpoints, state.markers)
    checkpointer.save_soon(Checkpoint("fn/s", "arn", "shard-1", "1"))
    checkpointer.save_soon(Checkpoint("fn/s", "arn", "shard-2", "2"))
    await checkpointer.flush()
    assert on_disk(state) == {"shard-1": "1", "shard-2": "2"}


async def test_save_durably_is_on_disk_when_it_returns_and_not_overwritten_by_older_queued_positions(
    state: StateStore,
) -> None:
    checkpointer = LocalCheckpointer(state.checkpoints, state.markers)
    checkpointer.save_soon(Checkpoint("fn/s", "arn", "shard-1", "41"))
    await checkpointer.save_durably(Checkpoint("fn/s", "arn", "shard-1", "SHARD_END"))
    assert on_disk(state) == {"shard-1": "SHARD_END"}
    await checkpointer.flush()
    assert on_disk(state) == {"shard-1": "SHARD_END"}


async def test_a_daemon_alone_owns_every_shard_and_leads_every_schedule() -> None:
    leases = LocalLeases()
    assert await leases.owns_shard("fn/s", "shard-1")
    await leases.release_shard("fn/s", "shard-1")
    assert await leases.owns_shard("fn/s", "shard-1")
    assert await leases.leads_schedule("fn/tick")
