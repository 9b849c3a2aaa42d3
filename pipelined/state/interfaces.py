"""What several daemons will later share: a stream checkpointer and shard/schedule leases.

Each is a small Protocol with its local, single-daemon implementation; a shared one (several
daemons reading one stream) implements the same methods, so the stream engine and the schedule
source do not change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Protocol

from pipelined.state.checkpoints import Checkpoint, CheckpointStore
from pipelined.state.markers import STREAM_RESET, MarkerStore


class Checkpointer(Protocol):
    """Where a stream source keeps the position of each of its shards."""

    async def load(self, source: str, stream: str) -> dict[str, str]:
        """shard -> stored position, for every shard of `stream` that `source` has a checkpoint for."""

    async def reset_to(self, source: str) -> str | None:
        """Where every shard starts after `checkpoints reset --to`, while the source has no checkpoints."""

    async def pin(self, checkpoints: Iterable[Checkpoint]) -> None:
        """Store positions durably before returning (a first start's, so a restart begins there too)."""

    def save_soon(self, checkpoint: Checkpoint) -> Awaitable[None]:
        """Queue a shard's position for the next group commit; the awaitable completes once durable."""

    async def flush(self) -> None:
        """Wait until every queued position is durable."""

    async def save_durably(self, checkpoint: Checkpoint) -> None:
        """Store a shard's position and wait until it is durable (SHARD_END: its children may start)."""


class LocalCheckpointer:
    """The checkpointer of a daemon alone: the checkpoints table of its state file, group-committed."""

    def __init__(self, checkpoints: CheckpointStore, markers: MarkerStore) -> None:
        self._checkpoints = checkpoints
        self._markers = markers

    async def load(self, source: str, stream: str) -> dict[str, str]:
        """shard -> stored position, for every shard of `stream` that `source` has a checkpoint for."""
        return {c.shard: c.sequence for c in await self._checkpoints.list(source) if c.stream == stream}

    async def reset_to(self, source: str) -> str | None:
        """Where every shard starts after `checkpoints reset --to`, while the source has no checkpoints."""
        return await self._markers.get(source, STREAM_RESET, STREAM_RESET)

    async def pin(self, checkpoints: Iterable[Checkpoint]) -> None:
        """Store positions durably before returning."""
        await self._checkpoints.save(checkpoints)

    def save_soon(self, checkpoint: Checkpoint) -> asyncio.Future[None]:
        """Queue a shard's position for the next group commit; the future resolves once durable."""
        return self._checkpoints.save_soon([checkpoint], hurry=True)

    async def flush(self) -> None:
        """Wait until every queued position is durable."""
        await self._checkpoints.flush()

    async def save_durably(self, checkpoint: Checkpoint) -> None:
        """Store a shard's position and wait until it is durable."""
        # Through the queue, not around it: an older queued position of the shard must not land later.
        self._checkpoints.save_soon([checkpoint])
        await self._checkpoints.flush()


class Leases(Protocol):
    """Who reads which shard and who fires which schedule, once several daemons share the work."""

    # True when other daemons share the work (a reader reloads its checkpoint once it holds the lease).
    shared: bool
    # This daemon's name among them (None alone).
    member_id: str | None

    @property
    def retry_interval(self) -> float:
        """Seconds between asking for the lease of a shard that another daemon reads."""

    def holds_shard(self, source: str, shard: str) -> bool:
        """True while the lease taken by `owns_shard` is still this daemon's (no database call)."""

    async def owns_shard(self, source: str, shard: str) -> bool:
        """Take or keep the lease on a shard: True while this daemon may read it."""

    async def release_shard(self, source: str, shard: str) -> None:
        """Give up a shard's lease: its reader stopped or the shard is finished."""

    async def leads_schedule(self, source: str) -> bool:
        """True when this daemon is the one that fires the schedule."""

    async def claim_tick(self, source: str, fire_time: float) -> bool:
        """Record, before it runs, that this daemon fires a tick; False when it may not (fired already)."""


class LocalLeases:
    """The leases of a daemon alone: it owns every shard and leads every schedule."""

    shared = False
    member_id: str | None = None

    @property
    def retry_interval(self) -> float:
        """Never asked again: every lease is granted at once."""
        return 10.0

    def holds_shard(self, source: str, shard: str) -> bool:
        """Always."""
        return True

    async def owns_shard(self, source: str, shard: str) -> bool:
        """Always: no other daemon reads the shard."""
        return True

    async def release_shard(self, source: str, shard: str) -> None:
        """Nothing to give up."""

    async def leads_schedule(self, source: str) -> bool:
        """Always: no other daemon fires the schedule."""
        return True

    async def claim_tick(self, source: str, fire_time: float) -> bool:
        """Always: alone, a daemon records a tick once it settles instead."""
        return True


LOCAL_LEASES = LocalLeases()
