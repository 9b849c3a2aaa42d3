"""Where an asynchronous invocation's record goes: the local dead-letter store, SQS, SNS or a function."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipelined.aws import AwsClients
from pipelined.config import AsyncDestination
from pipelined.dispatch.destinations import SnsDestination, SqsDestination
from pipelined.errors import DestinationError
from pipelined.state import NewDeadLetter, StateStore

# The `source` under which failed async invocations are parked (what `pipelined dlq list` shows).
ASYNC_SOURCE = "async"
SQLITE = AsyncDestination(destination="sqlite")


@dataclass(frozen=True, slots=True)
class Settled:
    """An asynchronous invocation that is finished, with the record its destination receives."""

    function: str
    record: Mapping[str, Any]
    condition: str
    invoke_count: int
    received_at: float
    # Where `pipelined dlq list` says it came from; an EventBridge rule's failures name the rule.
    source: str = ASYNC_SOURCE
    # Sent instead of the record to a remote destination, with these message attributes (EventBridge's
    # dead-letter queues receive the event itself, the rule and the error as attributes).
    body: Any = None
    attributes: Mapping[str, str] | None = None


class RecordSender:
    """Delivers destination records; `enqueue(function, payload)` invokes a function asynchronously."""

    def __init__(
        self,
        state: StateStore,
        aws: Callable[[], AwsClients],
        enqueue: Callable[[str, str], Awaitable[None]],
    ) -> None:
        self._state = state
        self._aws = aws
        self._enqueue = enqueue
        self._remote: dict[str, SqsDestination | SnsDestination] = {}
        self._clients: AwsClients | None = None

    async def send(self, target: AsyncDestination, settled: Settled) -> None:
        """Deliver the record; DestinationError when it cannot be delivered."""
        kind = target.kind
        if kind == "sqlite":
            await self._park(settled)
        elif kind == "function":
            try:
                await self._enqueue(target.function_name, json.dumps(settled.record, default=str))
            except Exception as exc:
                raise DestinationError(f"cannot invoke {target.destination}: {exc}") from exc
        elif settled.attributes is not None:
            destination = self._remote_destination(target)
            if not isinstance(destination, SqsDestination):
                raise DestinationError(f"{target.destination}: a rule's dead letter must be an SQS queue")
            await destination.send_record(settled.body, "dead-lettered event", settled.attributes)
        else:
            await self._remote_destination(target).send_record(settled.record)

    def _remote_destination(self, target: AsyncDestination) -> SqsDestination | SnsDestination:
        clients = self._aws()
        if clients is not self._clients:  # a reload replaced the AWS clients
            self._clients = clients
            self._remote.clear()
        destination = self._remote.get(target.destination)
        if destination is None:
            destination = (
                SnsDestination(clients, target.destination)
                if target.kind == "sns"
                else SqsDestination(clients, target.destination)
            )
            self._remote[target.destination] = destination
        return destination

    async def _park(self, settled: Settled) -> None:
        record = settled.record
        entry = NewDeadLetter(
            function=settled.function,
            source=settled.source,
            event=record.get("requestPayload"),
            error=record.get("responsePayload") if "functionError" in record["responseContext"] else None,
            failure_record=record,
            condition=settled.condition,
            attempts=settled.invoke_count,
            first_failed_at=settled.received_at,
        )
        try:
            await self._state.dead_letters.add([entry])
        except Exception as exc:
            raise DestinationError(f"cannot write to the local dead-letter store: {exc}") from exc
