"""Fencing on a real PostgreSQL: a member whose lease was taken over cannot move the checkpoint."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pipelined.state import Checkpoint, StateStore


async def test_a_checkpoint_under_a_lease_taken_over_is_refused_by_the_database(
    pg_url: str, tmp_path: Path
) -> None:
    first = await StateStore.open(tmp_path, url=pg_url)
    second = await StateStore.open(tmp_path, url=pg_url)
    try:
        a = await first.join_cluster("a", 2.0, 60.0, None)  # a renews too late: its lease lapses
        b = await second.join_cluster("b", 2.0, 60.0, None)
        assert await a.owns_shard("fn/k", "shard-1")
        assert not await b.owns_shard("fn/k", "shard-1")
        assert first.fenced is not None and second.fenced is not None
        await first.fenced.save_soon(Checkpoint("fn/k", "arn:s", "shard-1", "10"))
        await asyncio.sleep(2.3)
        assert await b.owns_shard("fn/k", "shard-1")  # a takeover of the expired lease
        # `a` still believes it holds the lease (as a member does that lost the database for a while):
        # only the database's fence stands between its stale write and the shared checkpoint.
        a.reachable = False
        assert a.holds_shard("fn/k", "shard-1")
        await first.fenced.save_soon(Checkpoint("fn/k", "arn:s", "shard-1", "5"))
        await first.fenced.flush()
        assert first.fenced.fenced == 1 and not a.holds_shard("fn/k", "shard-1")
        await second.fenced.save_soon(Checkpoint("fn/k", "arn:s", "shard-1", "20"))
        assert [c.sequence for c in await second.checkpoints.list("fn/k")] == ["20"]
        # Leaving releases at once: the shard is free for `a` without waiting for an expiry.
        await second.leave_cluster()
        a.reachable = True
        assert await a.owns_shard("fn/k", "shard-1")
    finally:
        await first.close()
        await second.close(flush=False)


async def test_a_tick_is_recorded_once_even_while_two_members_believe_they_lead(
    pg_url: str, tmp_path: Path
) -> None:
    first = await StateStore.open(tmp_path, url=pg_url)
    second = await StateStore.open(tmp_path, url=pg_url)
    try:
        a = await first.join_cluster("a", 2.0, 60.0, None)  # a renews too late: its leadership lapses
        b = await second.join_cluster("b", 2.0, 60.0, None)
        assert await a.leads_schedule("fn/tick") and not await b.leads_schedule("fn/tick")
        assert await a.claim_tick("fn/tick", 100.0)
        assert not await a.claim_tick("fn/tick", 100.0)  # a tick is claimed once
        await asyncio.sleep(2.3)
        assert await b.leads_schedule("fn/tick")
        a.reachable = False  # so `a` still believes it leads, as a member stalled past its lease does
        assert await a.leads_schedule("fn/tick")
        assert not await b.claim_tick("fn/tick", 100.0)  # fired by the previous leader
        assert await b.claim_tick("fn/tick", 101.0)
        # The stale leader's claims are refused by the database, whether the tick is new or not,
        # and it stops believing it leads.
        assert not await a.claim_tick("fn/tick", 101.0)
        assert not await a.claim_tick("fn/tick", 102.0)
        assert not a.holds_shard("fn/tick", "*schedule*")
        assert await second.schedules.last_fire("fn/tick") == 101.0
    finally:
        await first.close()
        await second.close()
