from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipelined.config import ScheduleSource
from pipelined.core.records import Outcome
from pipelined.sources.schedule import ScheduleEventSource
from pipelined.state import StateStore


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[StateStore]:
    store = await StateStore.open(tmp_path)
    yield store
    await store.close()


async def started(
    state: StateStore, now: str, last_fire: str | None = None, **options: Any
) -> ScheduleEventSource:
    if last_fire is not None:
        await state.schedules.record_fire("fn/s", ts(last_fire))
    config = ScheduleSource(type="schedule", name="s", **options)
    source = ScheduleEventSource("fn", config, state, "eu-west-1", clock=lambda: ts(now))
    await source.start()
    return source


async def immediate_times(source: ScheduleEventSource) -> list[str]:
    """Event times the source hands out without waiting (the caught-up firings)."""
    times = []
    while True:
        try:
            batch = await asyncio.wait_for(source.poll(), 0.2)
        except TimeoutError:
            return times
        assert batch is not None
        times.append(batch.event()["time"])


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [
        ("none", []),
        ("latest", ["2026-03-02T13:00:00Z"]),
        ("all", ["2026-03-02T11:00:00Z", "2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z"]),
    ],
)
async def test_catch_up_after_downtime(state: StateStore, catch_up: str, expected: list[str]) -> None:
    source = await started(
        state, "2026-03-02T13:30:00", "2026-03-02T10:00:00", expression="cron(0 * * * ? *)", catch_up=catch_up
    )
    assert await immediate_times(source) == expected


async def test_first_start_never_catches_up(state: StateStore) -> None:
    source = await started(state, "2026-03-02T13:30:00", expression="cron(0 * * * ? *)", catch_up="all")
    assert await immediate_times(source) == []


async def test_catch_up_is_bounded_by_maximum_event_age(state: StateStore) -> None:
    source = await started(
        state,
        "2026-03-02T13:30:00",
        "2026-03-01T00:00:00",
        expression="cron(0 * * * ? *)",
        catch_up="all",
        maximum_event_age="2h",
    )
    assert await immediate_times(source) == ["2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z"]


async def test_fixed_input_replaces_the_eventbridge_envelope(state: StateStore) -> None:
    source = await started(
        state,
        "2026-03-02T13:30:00",
        "2026-03-02T12:30:00",
        expression="cron(0 * * * ? *)",
        input={"job": "report"},
    )
    batch = await asyncio.wait_for(source.poll(), 1)
    assert batch is not None and batch.event() == {"job": "report"}
    assert batch.records[0].arrived_at == ts("2026-03-02T13:00:00")


async def test_cron_in_a_time_zone_fires_at_local_wall_time(state: StateStore) -> None:
    source = await started(
        state,
        "2026-01-15T08:30:00",
        "2026-01-14T08:30:00",
        expression="cron(0 9 * * ? *)",
        timezone="Europe/Paris",
    )
    batch = await asyncio.wait_for(source.poll(), 1)
    assert batch is not None
    assert batch.event()["time"] == "2026-01-15T08:00:00Z"  # 09:00 CET


async def test_settled_firings_are_persisted(state: StateStore) -> None:
    source = await started(
        state, "2026-03-02T13:30:00", "2026-03-02T12:30:00", expression="cron(0 * * * ? *)"
    )
    batch = await asyncio.wait_for(source.poll(), 1)
    assert batch is not None
    await source.settle(batch, Outcome(succeeded=batch.records))
    assert await state.schedules.last_fire("fn/s") == ts("2026-03-02T13:00:00")


async def test_a_past_at_schedule_never_fires(state: StateStore) -> None:
    source = await started(state, "2026-03-02T13:30:00", expression="at(2026-03-01T00:00:00)")
    assert await immediate_times(source) == []


class Follower:
    """The leases of a daemon that leads no schedule."""

    shared = True
    member_id = "follower"
    retry_interval = 1.0

    def __init__(self) -> None:
        self.asked: list[str] = []

    def holds_shard(self, source: str, shard: str) -> bool:
        return False

    async def owns_shard(self, source: str, shard: str) -> bool:
        return False

    async def release_shard(self, source: str, shard: str) -> None:
        return None

    async def leads_schedule(self, source: str) -> bool:
        self.asked.append(source)
        return False

    async def claim_tick(self, source: str, fire_time: float) -> bool:
        raise AssertionError("a follower never records a tick")


async def test_a_schedule_led_by_another_daemon_does_not_fire_here(state: StateStore) -> None:
    await state.schedules.record_fire("fn/s", ts("2026-03-02T11:30:00"))
    config = ScheduleSource(type="schedule", name="s", expression="cron(0 * * * ? *)", catch_up="all")
    leases = Follower()
    source = ScheduleEventSource(
        "fn", config, state, "eu-west-1", clock=lambda: ts("2026-03-02T13:30:00"), leases=leases
    )
    await source.start()
    assert [await asyncio.wait_for(source.poll(), 1) for _ in range(2)] == [None, None]
    assert leases.asked == ["fn/s", "fn/s"]
