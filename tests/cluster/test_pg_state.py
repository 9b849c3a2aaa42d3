"""The PostgreSQL state backend: migrations and version checks, and every store on a real server."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from pipelined.errors import StateError
from pipelined.state import Checkpoint, Marker, NewDeadLetter, StateStore
from pipelined.state.postgres import PG_MIGRATIONS
from tests.support import run_cli, write_config


async def test_a_new_database_is_migrated_once_and_reopening_keeps_its_data(
    pg_url: str, tmp_path: Path
) -> None:
    store = await StateStore.open(tmp_path, url=pg_url)
    try:
        assert store.shared and store.healthy
        assert await store.schema_version() == len(PG_MIGRATIONS)
        await store.checkpoints.save([Checkpoint("fn/k", "arn:s", "shard-1", "100")])
    finally:
        await store.close()
    again = await StateStore.open(tmp_path, url=pg_url)
    try:
        assert [(c.shard, c.sequence) for c in await again.checkpoints.list("fn/k")] == [("shard-1", "100")]
    finally:
        await again.close()
    # Nothing of the state went to the state directory.
    assert not (tmp_path / "state.db").exists()


async def test_a_database_from_a_newer_pipelined_is_refused(pg_url: str, tmp_path: Path) -> None:
    await (await StateStore.open(tmp_path, url=pg_url)).close()
    bump = f"UPDATE schema_version SET version = {len(PG_MIGRATIONS) + 1}"
    subprocess.run(["psql", pg_url, "-qc", bump], check=True)  # noqa: ASYNC221 - a one-off admin step
    with pytest.raises(StateError, match="newer than this pipelined understands"):
        await StateStore.open(tmp_path, url=pg_url)


async def test_an_unreachable_server_is_a_state_error_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="cannot use state database") as caught:
        await StateStore.open(tmp_path, url="postgresql://postgres:s3cret@127.0.0.1:1/nowhere")
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)


async def test_every_store_works_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path, url=pg_url)
    try:
        await store.checkpoints.save_soon([Checkpoint("fn/k", "arn:s", "shard-2", "7")])
        await store.checkpoints.flush()
        assert [c.sequence for c in await store.checkpoints.list()] == ["7"]
        assert await store.checkpoints.delete("fn/k") == 1

        await store.schedules.record_fire("fn/tick", 200.5)
        await store.schedules.record_fire("fn/tick", 100.0)  # never backwards
        assert await store.schedules.last_fire("fn/tick") == 200.5

        await store.markers.put("fn/m", "mqtt-subscription", "c1", "a/#")
        assert await store.markers.list() == [
            Marker("fn/m", "mqtt-subscription", "c1", "a/#", (await store.markers.list())[0].updated_at)
        ]

        ids = await store.dead_letters.add(
            [
                NewDeadLetter("fn", "fn/q", {"n": i}, None, {"x": 1}, "RetryAttemptsExhausted", 3, 1.0)
                for i in (1, 2)
            ]
        )
        assert ids[1] == ids[0] + 1
        assert [d.event for d in await store.dead_letters.list("fn")] == [{"n": 1}, {"n": 2}]
        assert await store.dead_letters.delete([ids[0]]) == 1

        event = await store.async_events.add("req-1", "fn", '{"a": 1}')
        assert (await store.async_events.body(event.id)).payload == '{"a": 1}'  # type: ignore[union-attr]
        assert [e.request_id for e in await store.async_events.pending()] == ["req-1"]
    finally:
        await store.close()


def test_state_migrate_brings_a_new_database_to_the_current_version(pg_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, {"fn": {"handler": "handlers.record"}}, state={"url": pg_url})
    done = run_cli("state", "migrate", "-c", str(config))
    assert done.returncode == 0, done.stderr
    assert f"schema version {len(PG_MIGRATIONS)} (was 0;" in done.stdout
    again = run_cli("state", "migrate", "-c", str(config))
    assert f"schema version {len(PG_MIGRATIONS)} (was {len(PG_MIGRATIONS)};" in again.stdout


async def test_dlq_on_any_member_sees_the_shared_dead_letters(pg_url: str, tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path, url=pg_url)
    try:
        await store.dead_letters.add(
            [NewDeadLetter("fn", "fn/q", {"n": 7}, None, {"x": 1}, "RetryAttemptsExhausted", 3, 1.0)]
        )
    finally:
        await store.close()
    (tmp_path / "other").mkdir()
    config = write_config(tmp_path / "other", {"fn": {"handler": "handlers.record"}}, state={"url": pg_url})
    listed = await asyncio.to_thread(run_cli, "dlq", "list", "-c", str(config))
    assert listed.returncode == 0, listed.stderr
    assert "fn/q" in listed.stdout and "RetryAttemptsExhausted" in listed.stdout
