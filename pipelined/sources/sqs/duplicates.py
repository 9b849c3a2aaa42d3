"""Messages a queue hands out twice: while a batch still holds them, or just after they were deleted.

A standard queue delivers at least once: a message may come back in a second ReceiveMessage while an
earlier batch still holds it (an SQS duplicate; moto's threaded server does it when two receives run at
the same moment; a visibility timeout that lapsed). Invoking it again would handle a success twice. The
source instead keeps such a copy with the batch already holding it, so that batch's heartbeat, delete or
retry covers the newer receipt handle too (SQS wants the latest one), and deletes without invoking a
message it deleted moments ago.
"""

from __future__ import annotations

import collections
import time

from pipelined.sources.sqs.records import Message

# Message ids deleted within this many seconds (at most RECENT of them) are deleted again on sight.
REMEMBER = 600.0
RECENT = 10_000

HELD = "is still being handled: its batch settles this copy too"
DELETED = "was handled and deleted already: deleted again"


class Duplicates:
    """The message ids a source's batches hold (with later copies), and the ids it deleted lately."""

    def __init__(self, remember: float = REMEMBER, limit: int = RECENT) -> None:
        self._copies: dict[str, list[Message]] = {}  # held id -> later receipts of it
        self._deleted: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._remember = remember
        self._limit = limit

    def seen(self, message: Message) -> str | None:
        """None for a new message (now held); else why this receipt is a copy (HELD or DELETED)."""
        copies = self._copies.get(message.message_id)
        if copies is not None:
            copies.append(message)
            return HELD
        self._expire()
        if message.message_id in self._deleted:
            return DELETED
        self._copies[message.message_id] = []
        return None

    def latest(self, messages: list[Message]) -> list[Message]:
        """Each message by its most recent receipt (what ChangeMessageVisibility must name)."""
        return [(self._copies.get(m.message_id) or [m])[-1] for m in messages]

    def every(self, messages: list[Message]) -> list[Message]:
        """Each message and every later copy of it (a delete covers all its receipt handles)."""
        return [*messages, *(c for m in messages for c in self._copies.get(m.message_id, ()))]

    def release(self, messages: list[Message]) -> None:
        """A batch settled or abandoned these messages."""
        for message in messages:
            self._copies.pop(message.message_id, None)

    def deleted(self, messages: list[Message]) -> None:
        now = time.monotonic()
        for message in messages:
            self._deleted[message.message_id] = now
            self._deleted.move_to_end(message.message_id)
        while len(self._deleted) > self._limit:
            self._deleted.popitem(last=False)

    def _expire(self) -> None:
        horizon = time.monotonic() - self._remember
        while self._deleted and next(iter(self._deleted.values())) < horizon:
            self._deleted.popitem(last=False)
