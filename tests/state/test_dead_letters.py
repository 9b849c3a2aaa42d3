"""The local dead-letter store."""

from __future__ import annotations

from pathlib import Path

from pipelined.state import NewDeadLetter, StateStore


async def test_dead_letters_roundtrip(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path)
    entry = NewDeadLetter(
        "fn", "tick", {"a": [1, 2]}, {"errorMessage": "x"}, {"version": "1.0"}, "RetriesExhausted", 3, 1.0
    )
    ids = await store.dead_letters.add([entry, entry])
    assert len(ids) == 2
    got = await store.dead_letters.get(ids[0])
    assert got is not None and got.event == {"a": [1, 2]} and got.attempts == 3
    await store.dead_letters.mark_redrive_failed(ids[0], {"errorMessage": "y"})
    got = await store.dead_letters.get(ids[0])
    assert got is not None and got.attempts == 4 and got.error == {"errorMessage": "y"}
    assert await store.dead_letters.delete([ids[0]]) == 1
    assert [d.id for d in await store.dead_letters.list("fn")] == [ids[1]]
    await store.close()
