"""How many of a source's pollers may hold a batch at once: more during a backlog, fewer when idle."""

from __future__ import annotations

import asyncio
from collections import deque

# Like Lambda, which starts an SQS event source mapping with five pollers.
INITIAL_POLLERS = 5


class PollerGate:
    """A semaphore whose size (`target`) moves between 1 and `ceiling` as batches come back full or empty.

    The dispatcher runs `ceiling` pollers; a poller takes a permit before it receives and gives it back
    when its batch is settled (or the receive was empty). A full batch means a backlog: the target
    doubles (a burst is met within a few receives). An empty receive takes one away: idle, one poller
    long-polls and the rest wait here instead of each holding a connection open. A ceiling of 0
    (reserved concurrency 0) never lets anyone through.
    """

    def __init__(self, ceiling: int, initial: int = INITIAL_POLLERS) -> None:
        self.ceiling = max(0, ceiling)
        self.target = min(max(1, initial), self.ceiling)
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        """Wait for a permit."""
        while self.active >= self.target:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken and cancelled at once: pass the wake-up on
                raise
        self.active += 1

    def release(self) -> None:
        """Give a permit back."""
        self.active -= 1
        self._wake()

    def grow(self) -> None:
        """Twice as many pollers may hold a batch, up to the ceiling (a receive came back full)."""
        if self.target < self.ceiling:
            self.target = min(self.ceiling, self.target * 2)
            self._wake()

    def shrink(self) -> None:
        """One fewer poller (a receive came back empty); at least one keeps polling."""
        self.target = max(min(1, self.ceiling), self.target - 1)

    def _wake(self) -> None:
        free = self.target - self.active
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1
