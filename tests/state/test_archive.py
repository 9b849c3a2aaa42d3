"""Event archives and the EventBridge additions to the async queue's table."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from pipelined.state import NewDeadLetter, NewEvent, StateStore


async def test_archived_events_are_read_back_by_time_and_expire_by_age(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path)
    await store.archive.add("b", [("e1", 100.0, {"n": 1}), ("e2", 200.0, {"n": 2}), ("e3", 300.0, {"n": 3})])
    await store.archive.add("other", [("e4", 150.0, {"n": 4})])
    assert [e.event_id for e in await store.archive.between("b", 100, 300)] == ["e1", "e2"]
    assert (await store.archive.between("b", 250, 400))[0].event == {"n": 3}
    count, size = await store.archive.stats("b")
    assert count == 3 and size == 3 * len('{"n": 1}')
    await store.archive.expire("b", before=0)  # archived now: nothing is that old
    assert (await store.archive.stats("b"))[0] == 3
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("UPDATE archived_events SET archived_at = 10 WHERE event_id = 'e1'")
    await store.archive.expire("b", before=50)
    assert [e.event_id for e in await store.archive.between("b", 0, 1000)] == ["e2", "e3"]
    assert (await store.archive.stats("other"))[0] == 1
    await store.close()


async def test_events_queued_together_keep_their_rule_policy_across_a_reopen(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path)
    policy = {"rule": "f-r", "maximum_retry_attempts": 3}
    queued = await store.async_events.add_many(
        [NewEvent("r1", "f", '{"a": 1}', policy=policy), NewEvent("r2", "g", "{}")]
    )
    assert [(q.request_id, q.policy) for q in queued] == [("r1", policy), ("r2", None)]
    await store.close()
    store = await StateStore.open(tmp_path)
    pending = await store.async_events.pending()
    assert [(p.id, p.function, p.policy) for p in pending] == [
        (queued[0].id, "f", policy),
        (queued[1].id, "g", None),
    ]
    await store.close()


async def test_dead_letters_parked_at_the_same_time_all_arrive(tmp_path: Path) -> None:
    # Two events giving up at once used to collide in one connection's BEGIN ... COMMIT.
    store = await StateStore.open(tmp_path)
    entries = [
        NewDeadLetter("fn", "s", {"n": n}, None, {"version": "1.0"}, "RetriesExhausted", 1, 1.0)
        for n in range(5)
    ]
    results = await asyncio.gather(*(store.dead_letters.add([e]) for e in entries))
    assert len({i for ids in results for i in ids}) == 5
    assert sorted(d.event["n"] for d in await store.dead_letters.list()) == list(range(5))
    await store.close()
