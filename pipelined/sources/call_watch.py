"""Calls to an upstream still awaiting an answer, so readiness drops while an endpoint hangs."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager

# A call unanswered for this long (an endpoint that accepts and never answers) makes its source unready:
# shorter than a call's own timeout (pipelined.aws.CALL_TIMEOUT), and much shorter than the timeouts and
# retries together, after which the call fails and the source reports the failure anyway.
STALL_AFTER = 4.0


class CallWatch:
    """When each of a source's calls in flight started; stalled once one has waited over STALL_AFTER."""

    def __init__(self, limit: float = STALL_AFTER) -> None:
        self._limit = limit
        self._tickets = itertools.count()
        # Insertion order is start order: the first entry is the oldest call.
        self._started: dict[int, float] = {}

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Around one call: watched from entry until it answers, fails or is cancelled."""
        ticket = next(self._tickets)
        self._started[ticket] = time.monotonic()
        try:
            yield
        finally:
            del self._started[ticket]

    def stalled(self, now: float | None = None) -> bool:
        """True while the oldest call in flight has waited longer than the limit."""
        oldest = next(iter(self._started.values()), None)
        if oldest is None:
            return False
        return (time.monotonic() if now is None else now) - oldest > self._limit
