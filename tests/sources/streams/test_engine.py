"""The stream engine on an in-memory stream service: lanes, checkpoints, lineage, positions, errors."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pipelined.core.records import Batch, Outcome, Record
from pipelined.core.timestamps import iso_millis
from pipelined.sources.streams.engine import StreamSource, reset_checkpoints
from pipelined.sources.streams.model import (
    DataTrimmedError,
    IteratorExpiredError,
    Page,
    Position,
    ShardGoneError,
    ShardInfo,
    StreamRecord,
)
from pipelined.state import Checkpoint, StateStore
from pipelined.state.interfaces import LocalCheckpointer
from tests.sources.push_support import next_pushed, start_pushing
from tests.sources.streams.support import kinesis_config, pipeline
from tests.support import until

ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/fake"


class FakeStream:
    """A stream service in memory, speaking the StreamAdapter contract; errors can be scripted."""

    batch_info_key = "KinesisBatchInfo"
    max_fetch = 100
    idle_poll_interval = 0.02
    busy_poll_interval = 0.0
    supports_at_timestamp = False

    def __init__(self) -> None:
        self.shards: dict[str, ShardInfo] = {}
        self.records: dict[str, list[StreamRecord]] = {}
        self.trimmed: dict[str, int] = {}
        self.errors: list[Exception] = []
        self.iterators: list[tuple[str, Position]] = []
        self._next_sequence = 1000

    def add_shard(self, shard_id: str, *parents: str) -> None:
        self.shards[shard_id] = ShardInfo(shard_id, parents, None, None)
        self.records[shard_id] = []

    def close(self, shard_id: str) -> None:
        last = self.records[shard_id][-1].record.id if self.records[shard_id] else "0"
        self.shards[shard_id] = ShardInfo(shard_id, self.shards[shard_id].parents, None, last)

    def put(self, shard_id: str, key: str, arrived_at: float | None = None, **body: Any) -> str:
        self._next_sequence += 1
        seq = str(self._next_sequence)
        data = base64.b64encode(json.dumps({"key": key, **body}).encode()).decode()
        payload = {"kinesis": {"data": data, "sequenceNumber": seq, "partitionKey": key}}
        record = Record(seq, payload, time.time() if arrived_at is None else arrived_at, {"data": body})
        self.records[shard_id].append(StreamRecord(record, key, 100))
        return seq

    async def resolve(self) -> str:
        return ARN

    async def list_shards(self) -> list[ShardInfo]:
        return list(self.shards.values())

    async def shard_iterator(self, shard_id: str, position: Position) -> str:
        self.iterators.append((shard_id, position))
        if shard_id not in self.shards:
            raise ShardGoneError("ResourceNotFoundException: no such shard")
        seqs = [r.record.id for r in self.records[shard_id]]
        first = self.trimmed.get(shard_id, 0)
        if position.kind == "TRIM_HORIZON":
            index = first
        elif position.kind == "LATEST":
            index = len(seqs)
        else:
            assert position.sequence is not None
            index = seqs.index(position.sequence) + (position.kind == "AFTER_SEQUENCE_NUMBER")
            if index < first:
                raise DataTrimmedError("TrimmedDataAccessException: trimmed")
        return f"{shard_id}|{index}"

    async def get_records(self, shard_id: str, iterator: str, limit: int) -> Page:
        if self.errors:
            raise self.errors.pop(0)
        shard, _, index_text = iterator.partition("|")
        index = int(index_text)
        records = self.records[shard][index : index + limit]
        end = index + len(records)
        closed = self.shards[shard].closed and end == len(self.records[shard])
        return Page(records, None if closed else f"{shard}|{end}")

    def arrival_text(self, ts: float) -> str:
        return iso_millis(ts)


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[StateStore]:
    store = await StateStore.open(tmp_path / "state")
    yield store
    await store.close()


def keys(records: list[dict[str, Any]] | tuple[Record, ...]) -> list[str]:
    return [(r.payload if isinstance(r, Record) else r)["kinesis"]["sequenceNumber"] for r in records]


async def started(fake: FakeStream, state: StateStore, **options: Any) -> StreamSource:
    options.setdefault("starting_position", "TRIM_HORIZON")
    checkpointer = LocalCheckpointer(state.checkpoints, state.markers)
    source = StreamSource(
        "fn", kinesis_config("fake", **options), fake, checkpointer, discovery_interval=0.05
    )
    await start_pushing(source)
    return source


async def next_batch(source: StreamSource) -> Batch:
    return await next_pushed(source)


async def stored(state: StateStore) -> dict[str, str]:
    await state.checkpoints.flush()
    return {c.shard: c.sequence for c in await state.checkpoints.list("fn/src")}


async def _checkpoint_is(p: Any, shard: str, value: str) -> bool:
    return bool((await p.checkpoints()).get(shard) == value)


# --- checkpoints over lanes ----------------------------------------------------------------------------


async def test_checkpoint_advances_only_over_the_contiguous_settled_prefix(state: StateStore) -> None:
    fake = FakeStream()
    fake.add_shard("s0")
    # Keys "a" and "d" land in different lanes of a parallelization factor of 2 (crc32 % 2).
    first = [fake.put("s0", "a"), fake.put("s0", "a")]
    second = [fake.put("s0", "d"), fake.put("s0", "d")]
    source = await started(fake, state, parallelization_factor=2, batch_size=10)
    try:
        batches = {keys(b.records)[0]: b for b in [await next_batch(source), await next_batch(source)]}
        assert sorted(keys(b.records) for b in batches.values()) == [first, second]
        later, earlier = batches[second[0]], batches[first[0]]
        await source.settle(later, Outcome(succeeded=later.records))
        assert "s0" not in await stored(state)  # the later records are done, the first ones not yet
        await source.settle(earlier, Outcome(succeeded=earlier.records))
        assert (await stored(state))["s0"] == second[-1]
    finally:
        await source.close()


async def test_unfinished_records_come_back_first_and_the_checkpoint_stops_before_them(
    state: StateStore,
) -> None:
    fake = FakeStream()
    fake.add_shard("s0")
    seqs = [fake.put("s0", "k") for _ in range(4)]
    source = await started(fake, state, batch_size=4)
    try:
        batch = await next_batch(source)
        done, left = batch.records[:1], batch.records[1:]
        await source.settle(batch, Outcome(succeeded=done, failed=left))
        assert (await stored(state))["s0"] == seqs[0]
        again = await next_batch(source)
        assert keys(again.records) == seqs[1:]
        await source.settle(again, Outcome(dead_lettered=again.records[:1], filtered=again.records[1:]))
        assert (await stored(state))["s0"] == seqs[-1]
    finally:
        await source.close()


async def test_one_batch_per_lane_is_in_flight_and_each_key_keeps_its_order(
    tmp_path: Path,
) -> None:
    fake = FakeStream()
    fake.add_shard("s0")
    for i in range(60):
        fake.put("s0", f"key-{i % 6}", n=i)
    config = kinesis_config("fake", starting_position="TRIM_HORIZON", batch_size=5, parallelization_factor=3)
    slow = {"SLEEP_SECONDS": "0.05"}
    async with pipeline(tmp_path, config, "record", adapter=lambda _: fake, environment=slow) as p:
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, p.runner.function.in_flight)
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        await until(lambda: len(p.delivered()) == 60, timeout=10)
        watcher.cancel()
        last = fake.records["s0"][-1].record.id
        await until(lambda: _checkpoint_is(p, "s0", last), timeout=5)
    assert 1 < peak <= 3
    order: dict[str, list[int]] = {}
    for call in p.calls:
        for r in call:
            body = json.loads(base64.b64decode(r["kinesis"]["data"]))
            order.setdefault(body["key"], []).append(body["n"])
    assert all(ns == sorted(ns) and len(ns) == 10 for ns in order.values())


# --- lineage ---------------------------------------------------------------------------------------


async def test_children_start_after_their_parents_and_an_expired_parent_blocks_nothing(
    tmp_path: Path,
) -> None:
    fake = FakeStream()
    fake.add_shard("parent")
    fake.add_shard("left", "parent")
    fake.add_shard("right", "parent")
    # "gone" was the parent of "orphan" but has expired: the orphan must not wait for it.
    fake.add_shard("orphan", "gone")
    parent = [fake.put("parent", "p") for _ in range(30)]
    fake.close("parent")
    children = [fake.put(s, s) for s in ("left", "right") for _ in range(5)]
    orphan = [fake.put("orphan", "o") for _ in range(3)]
    config = kinesis_config("fake", starting_position="TRIM_HORIZON", batch_size=10)
    async with pipeline(tmp_path, config, "record", adapter=lambda _: fake) as p:
        await until(lambda: len(p.delivered()) == 43, timeout=10)
        await until(lambda: _checkpoint_is(p, "parent", "SHARD_END"), timeout=5)
    order = keys(p.delivered())
    assert sorted(order) == sorted(parent + children + orphan)
    assert max(order.index(s) for s in parent) < min(order.index(s) for s in children)
    # The parent was read to its end before either child was even opened.
    opened = [shard for shard, _ in fake.iterators]
    assert opened.index("left") > opened.index("parent") and opened.index("right") > opened.index("parent")
    assert [pos.kind for shard, pos in fake.iterators if shard in ("left", "right")] == ["TRIM_HORIZON"] * 2


async def test_a_finished_parent_is_remembered_across_restarts(tmp_path: Path) -> None:
    fake = FakeStream()
    fake.add_shard("parent")
    fake.add_shard("child", "parent")
    fake.put("parent", "p")
    fake.close("parent")
    config = kinesis_config("fake", starting_position="TRIM_HORIZON")
    async with pipeline(tmp_path, config, "record", adapter=lambda _: fake) as p:
        await until(lambda: _checkpoint_is(p, "parent", "SHARD_END"), timeout=5)
    fake.iterators.clear()
    child = fake.put("child", "c")
    async with pipeline(tmp_path, config, "record", adapter=lambda _: fake) as p:
        await until(lambda: _checkpoint_is(p, "child", child), timeout=5)
    assert [shard for shard, _ in fake.iterators] == ["child"]


# --- iterators and upstream errors -------------------------------------------------------------------


async def test_errors_while_reading_are_logged_and_never_lose_or_repeat_records(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "pipelined")
    fake = FakeStream()
    fake.add_shard("s0")
    first = [fake.put("s0", "k") for _ in range(3)]
    config = kinesis_config("fake", starting_position="TRIM_HORIZON", batch_size=3)
    async with pipeline(tmp_path, config, "record", adapter=lambda _: fake) as p:
        await until(lambda: _checkpoint_is(p, "s0", first[-1]), timeout=5)
        fake.errors += [
            IteratorExpiredError("ExpiredIteratorException: expired"),
            RuntimeError("network down"),
        ]
        second = [fake.put("s0", "k") for _ in range(3)]
        await until(lambda: _checkpoint_is(p, "s0", second[-1]), timeout=10)
        assert p.source.healthy
    assert keys(p.delivered()) == first + second
    renewed = [pos for shard, pos in fake.iterators][1:]
    assert renewed[0] == Position("AFTER_SEQUENCE_NUMBER", first[-1])
    assert "iterator expired; renewing it" in caplog.text
    assert "reading failed (network down)" in caplog.text


async def test_a_trimmed_checkpoint_continues_from_the_oldest_record(
    tmp_path: Path, state: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeStream()
    fake.add_shard("s0")
    seqs = [fake.put("s0", "k") for _ in range(5)]
    fake.trimmed["s0"] = 3  # the first three records expired while the daemon was down
    await state.checkpoints.save([Checkpoint("fn/src", ARN, "s0", seqs[0])])
    await state.close()
    config = kinesis_config("fake", starting_position="TRIM_HORIZON")
    async with pipeline(tmp_path, config, "record", adapter=lambda _: fake) as p:
        await until(lambda: _checkpoint_is(p, "s0", seqs[-1]), timeout=5)
    assert keys(p.delivered()) == seqs[3:]
    assert "expired before they were read" in caplog.text


async def test_a_shard_that_disappears_is_finished_and_the_rest_keeps_going(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeStream()
    fake.add_shard("doomed")
    fake.add_shard("child", "doomed")
    fake.add_shard("other")
    config = kinesis_config("fake", starting_position="TRIM_HORIZON")
    async with pipeline(tmp_path, config, "record", adapter=lambda _: fake) as p:
        await until(lambda: any(s == "doomed" for s, _ in fake.iterators), timeout=5)
        del fake.shards["doomed"]
        fake.errors.append(ShardGoneError("ResourceNotFoundException: gone"))
        child, other = fake.put("child", "c"), fake.put("other", "o")
        await until(lambda: _checkpoint_is(p, "child", child), timeout=5)
        await until(lambda: _checkpoint_is(p, "other", other), timeout=5)
    assert "shard doomed no longer exists" in caplog.text


# --- starting positions ---------------------------------------------------------------------------------


async def test_latest_is_pinned_so_a_restart_before_the_first_record_misses_nothing(
    tmp_path: Path, state: StateStore
) -> None:
    fake = FakeStream()
    fake.add_shard("old")
    fake.add_shard("s0", "old")
    fake.put("old", "k", arrived_at=time.time() - 3600)
    fake.close("old")
    fake.put("s0", "k", arrived_at=time.time() - 3600)
    source = await started(fake, state, starting_position="LATEST")
    await until(lambda: fake.iterators, timeout=5)
    await source.close()
    pinned = await stored(state)
    assert pinned["old"] == "SHARD_END" and pinned["s0"].startswith("AT_TIMESTAMP:")
    assert fake.iterators == [("s0", Position("LATEST"))]
    await state.close()
    # Written while the daemon was down, before it ever checkpointed a record of s0.
    missed = fake.put("s0", "k")
    config = kinesis_config("fake", starting_position="LATEST")
    async with pipeline(tmp_path, config, "record", adapter=lambda _: fake) as p:
        await until(lambda: _checkpoint_is(p, "s0", missed), timeout=5)
    assert keys(p.delivered()) == [missed]


async def test_an_iterator_renewed_before_the_first_record_of_a_latest_start_misses_nothing(
    tmp_path: Path,
) -> None:
    fake = FakeStream()
    fake.add_shard("s0")
    fake.put("s0", "k", arrived_at=time.time() - 3600)
    config = kinesis_config("fake", starting_position="LATEST")
    async with pipeline(tmp_path, config, "record", adapter=lambda _: fake) as p:
        await until(lambda: fake.iterators, timeout=5)
        fake.errors.append(IteratorExpiredError("ExpiredIteratorException: expired"))
        written_meanwhile = fake.put("s0", "k")
        await until(lambda: _checkpoint_is(p, "s0", written_meanwhile), timeout=5)
    assert keys(p.delivered()) == [written_meanwhile]
    assert [pos.kind for _, pos in fake.iterators] == ["LATEST", "TRIM_HORIZON"]  # + skipping older records


async def test_reset_to_trim_horizon_replays_and_reset_to_a_sequence_number_resumes_there(
    tmp_path: Path, state: StateStore
) -> None:
    fake = FakeStream()
    fake.add_shard("s0")
    seqs = [fake.put("s0", "k") for _ in range(4)]
    config = kinesis_config("fake", starting_position="LATEST")
    await state.checkpoints.save([Checkpoint("fn/src", ARN, "s0", seqs[-1])])
    message = await reset_checkpoints(state, "fn/src", "TRIM_HORIZON", None)
    assert "removed 1 checkpoint" in message
    await state.close()
    async with pipeline(tmp_path, config, "record", adapter=lambda _: fake) as p:
        await until(lambda: _checkpoint_is(p, "s0", seqs[-1]), timeout=5)
        assert keys(p.delivered()) == seqs
    async with pipeline(tmp_path, config, "record", adapter=lambda _: fake) as p:
        await reset_checkpoints(p.state, "fn/src", seqs[2], None)
    async with pipeline(tmp_path, config, "record", adapter=lambda _: fake) as p:
        await until(lambda: len(p.delivered()) == 2, timeout=5)
        assert keys(p.delivered()) == seqs[2:]


class HeldElsewhere:
    """Leases of a daemon whose shards another daemon reads until `free` is set."""

    shared = False
    member_id = None
    retry_interval = 0.02

    def __init__(self) -> None:
        self.free = False
        self.asked = 0
        self.released: list[str] = []

    def holds_shard(self, source: str, shard: str) -> bool:
        return self.free

    async def owns_shard(self, source: str, shard: str) -> bool:
        self.asked += 1
        return self.free

    async def release_shard(self, source: str, shard: str) -> None:
        self.released.append(shard)

    async def leads_schedule(self, source: str) -> bool:
        return True


async def test_a_shard_leased_by_another_daemon_is_read_once_its_lease_is_free(
    state: StateStore,
) -> None:
    fake = FakeStream()
    fake.add_shard("s0")
    seq = fake.put("s0", "k")
    leases = HeldElsewhere()
    checkpointer = LocalCheckpointer(state.checkpoints, state.markers)
    config = kinesis_config("fake", starting_position="TRIM_HORIZON")
    source = StreamSource("fn", config, fake, checkpointer, leases, discovery_interval=0.05)
    await start_pushing(source)
    try:
        await until(lambda: leases.asked >= 3, timeout=5)
        assert fake.iterators == []
        leases.free = True
        batch = await next_batch(source)
        assert keys(batch.records) == [seq]
        await source.settle(batch, Outcome(succeeded=batch.records))
    finally:
        await source.close()
    assert leases.released == ["s0"]


# --- batching and failure records ------------------------------------------------------------------


async def test_the_batching_window_gathers_records_into_one_batch(state: StateStore) -> None:
    fake = FakeStream()
    fake.add_shard("s0")
    source = await started(fake, state, maximum_batching_window=0.5, batch_size=50)
    try:
        fake.put("s0", "k")
        await until(lambda: fake.iterators, timeout=5)
        second = fake.put("s0", "k")
        batch = await next_batch(source)
        assert keys(batch.records)[-1] == second and len(batch.records) == 2
    finally:
        await source.close()


async def test_records_too_old_go_to_the_destination_with_kinesis_batch_info(tmp_path: Path) -> None:
    fake = FakeStream()
    fake.add_shard("shardId-000000000003")
    old = time.time() - 120
    seqs = [fake.put("shardId-000000000003", "k", arrived_at=old + i) for i in range(3)]
    config = kinesis_config("fake", starting_position="TRIM_HORIZON", maximum_record_age="1m")
    async with pipeline(tmp_path, config, "record", adapter=lambda _: fake) as p:
        await until(lambda: _checkpoint_is(p, "shardId-000000000003", seqs[-1]), timeout=5)
        [entry] = await p.state.dead_letters.list()
    assert p.calls == []
    record = entry.failure_record
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["KinesisBatchInfo"] == {
        "shardId": "shardId-000000000003",
        "startSequenceNumber": seqs[0],
        "endSequenceNumber": seqs[-1],
        "approximateArrivalOfFirstRecord": iso_millis(old),
        "approximateArrivalOfLastRecord": iso_millis(old + 2),
        "batchSize": 3,
        "streamArn": ARN,
    }
