"""The SQS source: long polls, batching windows, scaling pollers, visibility heartbeat, retry backoff, FIFO.

`SqsQueueSource` reads one queue; a *decoder* turns each message into records. Plain `sqs` sources use
`sqs_decoder` (one Lambda-shaped SQS record per message, `sqs_events.py`); `s3` sources via SQS plug
in their own (`s3.py`). Either way a message is deleted only when all of its records are done
(`sqs_settle.py`). docs/sources-sqs.md explains the design.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelined.aws import AwsClients, aws_error, describe, resolve_queue_url
from pipelined.core.identity import parse_arn
from pipelined.core.records import Batch, Outcome, PartialFailureMode, Record
from pipelined.errors import SourceError
from pipelined.observe.metrics import SourceMetrics
from pipelined.sources.sqs.duplicates import DELETED, Duplicates
from pipelined.sources.sqs.health import QueueHealth
from pipelined.sources.sqs.records import Decoder, Message, QueueInfo
from pipelined.sources.sqs.scaling import PollerGate
from pipelined.sources.sqs.settle import (
    MAX_PER_CALL,
    change_visibility,
    delete_messages,
    plan_settlement,
    retry_delay,
)

log = logging.getLogger("pipelined.sources.sqs")

RECEIVE_WAIT = 20  # seconds: SQS's longest long poll
# Lambda's invocation payload limit: a batch stops growing before it could pass it.
PAYLOAD_LIMIT = 6 * 1024 * 1024
MISSING_QUEUE = ("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue")


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """How a source reads its queue; built from an `sqs` event source (or an `s3` one via SQS)."""

    queue: str
    batch_size: int = 10
    batching_window: float = 0.0
    report_batch_item_failures: bool = False
    # maximum_concurrency, already capped by the function's reserved_concurrency.
    concurrency: int = 5
    visibility_timeout: float | None = None
    backoff_base: float = 1.0
    backoff_max: float = 300.0


@dataclass(eq=False)
class _InFlight:
    """One batch's messages from their first receive until they are settled."""

    queue: QueueInfo
    messages: list[Message] = field(default_factory=list)
    # How many records each message became; a message is deleted once that many are done.
    expected: dict[Message, int] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    landed: bool = False
    heartbeat: asyncio.Task[None] | None = None


class SqsQueueSource:
    """Reads one SQS queue for one function; failed messages are retried by the queue, not the daemon."""

    retry_policy = None

    def __init__(
        self,
        name: str,
        settings: QueueSettings,
        clients: AwsClients,
        decoder: Decoder,
        metrics: SourceMetrics | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        # Pollers the dispatcher runs; the gate decides how many of them may hold a batch right now.
        self.concurrency = max(1, settings.concurrency)
        self._clients = clients
        self._decode = decoder
        self._metrics = metrics
        self._rng = rng or random.Random()
        self._mode = PartialFailureMode.ITEMS if settings.report_batch_item_failures else None
        self._gate = PollerGate(settings.concurrency)
        self._info: QueueInfo | None = None
        self._resolving = asyncio.Lock()
        self._health = QueueHealth(name, clients, metrics)
        self._flights: set[_InFlight] = set()
        self._duplicates = Duplicates()
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def healthy(self) -> bool:
        """False from a failed SQS call until the endpoint answers again, and while a call hangs."""
        return self._health.healthy

    @property
    def pollers(self) -> int:
        """How many pollers may currently hold a batch (scales with the queue's backlog)."""
        return self._gate.target

    async def start(self) -> None:
        if self.settings.concurrency == 0:
            log.warning("%s: reserved_concurrency is 0: the queue is not polled", self.name)
        try:
            info = await self.queue()
        except SourceError as exc:
            # Not fatal: polling keeps retrying with backoff and /readyz shows the source down.
            log.warning("%s: %s", self.name, exc)
            return
        if info.visibility_timeout == 0:
            log.warning("%s: visibility timeout 0: messages are redelivered while being processed", self.name)

    async def queue(self) -> QueueInfo:
        """The queue's URL, ARN and settings, resolved once (again after it was found missing)."""
        if self._info is not None:
            return self._info
        async with self._resolving:
            if self._info is None:
                self._info = await self._resolve()
            return self._info

    async def _resolve(self) -> QueueInfo:
        sqs = await self._clients.client("sqs")
        try:
            with self._health.calls.watching():
                url = await resolve_queue_url(sqs, self.settings.queue)
                response = await sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["QueueArn", "VisibilityTimeout", "FifoQueue"]
                )
        except Exception as exc:
            raise self._failure("resolving the queue", exc) from exc
        attributes = response.get("Attributes", {})
        arn = attributes.get("QueueArn", "")
        configured = self.settings.visibility_timeout
        return QueueInfo(
            url=url,
            arn=arn,
            region=parse_arn(arn)["region"] if arn.startswith("arn:") else "",
            fifo=attributes.get("FifoQueue") == "true" or url.endswith(".fifo"),
            visibility_timeout=(
                math.ceil(configured)
                if configured is not None
                else int(attributes.get("VisibilityTimeout", 30))
            ),
        )

    def _failure(self, action: str, exc: BaseException) -> SourceError:
        self._health.failed()
        if aws_error(exc).get("Code") in MISSING_QUEUE:
            self._info = None  # re-resolve: the queue may be created again
        return SourceError(f"queue {self.settings.queue}: {action} failed: {describe(exc)}")

    # --- polling ---------------------------------------------------------------------------------

    async def poll(self) -> Batch | None:
        await self._gate.acquire()
        try:
            batch = await self._gather()
        except BaseException:
            self._gate.shrink()
            self._gate.release()
            raise
        if batch is None:
            self._gate.shrink()
            self._gate.release()
        elif len(batch.settle_token.messages) >= self.settings.batch_size:
            self._gate.grow()  # a full batch: more is probably waiting
        return batch

    async def _gather(self) -> Batch | None:
        """Receive until the batch is full or its window is over (a single receive when there is none)."""
        queue = await self.queue()
        settings = self.settings
        flight: _InFlight | None = None
        records: list[Record] = []
        deadline = size = 0.0
        try:
            while True:
                count = len(flight.messages) if flight else 0
                wait = RECEIVE_WAIT
                if flight is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    wait = min(RECEIVE_WAIT, int(remaining))
                try:
                    received = await self._receive(
                        queue, min(MAX_PER_CALL, settings.batch_size - count), wait
                    )
                except SourceError:
                    if flight is None:
                        raise
                    break  # deliver what was gathered; the next poll reports the error
                if not received and flight is None:
                    return None
                if flight is None:
                    flight = self._take_off(queue)
                    deadline = time.monotonic() + settings.batching_window
                for raw in received:
                    size += len(raw.get("Body", ""))
                    self._board(flight, raw, queue, records)
                count = len(flight.messages)
                if (
                    count >= settings.batch_size
                    or settings.batching_window == 0
                    or (not received and wait == 0)
                ):
                    break
                room = min(MAX_PER_CALL, settings.batch_size - count)
                if count and size + size / count * room > PAYLOAD_LIMIT:
                    break
        except BaseException:
            # Cancelled (shutdown) or a bug: nobody will settle these messages, so release them.
            if flight is not None:
                self._abandon(flight)
            raise
        if not flight.messages:  # every message was a copy of one another batch holds
            await self._land(flight)
            return None
        return Batch(tuple(records), partial_failure_mode=self._mode, settle_token=flight)

    async def _receive(self, queue: QueueInfo, count: int, wait: int) -> list[dict[str, Any]]:
        sqs = await self._clients.client("sqs", "long_poll")
        params: dict[str, Any] = {
            "QueueUrl": queue.url,
            "MaxNumberOfMessages": count,
            "WaitTimeSeconds": wait,
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if self.settings.visibility_timeout is not None:
            params["VisibilityTimeout"] = queue.visibility_timeout
        call = asyncio.ensure_future(sqs.receive_message(**params))
        try:
            response = await self._health.long_poll(call, queue.url)
        except Exception as exc:
            raise self._failure("receiving", exc) from exc
        self._health.answered()
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _board(self, flight: _InFlight, raw: Mapping[str, Any], queue: QueueInfo, out: list[Record]) -> None:
        message = Message.received(raw)
        copy = self._duplicates.seen(message)
        if copy is not None:
            self._duplicated(flight.queue, message, copy)
            return
        flight.messages.append(message)
        try:
            records = self._decode(raw, message, queue)
        except Exception:
            log.exception("%s: decoding message %s failed", self.name, message.message_id)
            records = None
        if records is None:
            log.warning("%s: message %s is not decodable; left to the queue", self.name, message.message_id)
            return
        flight.expected[message] = len(records)
        out.extend(records)

    def _duplicated(self, queue: QueueInfo, message: Message, why: str) -> None:
        """A message the queue handed out again while a batch holds it, or just after its delete."""
        if why == DELETED:
            self._later(self._delete(queue, [message]))
        text = "%s: message %s received again (receive count %d); it %s, not invoked twice"
        log.info(text, self.name, message.message_id, message.receive_count, why)
        if self._metrics is not None:
            self._metrics.count("duplicate")

    def _take_off(self, queue: QueueInfo) -> _InFlight:
        flight = _InFlight(queue)
        if queue.visibility_timeout > 0:
            flight.heartbeat = asyncio.create_task(self._heartbeat(flight), name=f"{self.name} heartbeat")
        self._flights.add(flight)
        return flight

    async def _heartbeat(self, flight: _InFlight) -> None:
        """Keep a batch's messages invisible while it is gathered, waits for a slot and is invoked."""
        timeout = flight.queue.visibility_timeout
        while True:
            # A third of the timeout leaves two thirds for a slow or retried call (or a busy event loop)
            # to land in time: a late extension lets the queue hand the message to another poller.
            await asyncio.sleep(timeout / 3)
            async with flight.lock:
                if flight.landed:
                    return
                messages = self._duplicates.latest(flight.messages)
                problem = await self._change_visibility(flight.queue, messages, lambda _: timeout)
            if problem:
                self._health.failed()
                log.warning("%s: visibility heartbeat: %s", self.name, problem)
                if self._metrics is not None:
                    self._metrics.source_errors.inc()

    async def _land(self, flight: _InFlight) -> None:
        """Stop the heartbeat; under its lock, so no extension lands after the settle's own change."""
        async with flight.lock:
            flight.landed = True
        if flight.heartbeat is not None:
            flight.heartbeat.cancel()
        self._flights.discard(flight)

    def _abandon(self, flight: _InFlight) -> None:
        """Received but never delivered: make the messages visible again right away."""
        flight.landed = True
        if flight.heartbeat is not None:
            flight.heartbeat.cancel()
        self._flights.discard(flight)
        messages = self._duplicates.latest(flight.messages)
        self._duplicates.release(flight.messages)
        self._later(self._change_visibility(flight.queue, messages, lambda _: 0))

    def _later(self, call: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(call)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- settling --------------------------------------------------------------------------------

    async def settle(self, batch: Batch, outcome: Outcome) -> None:
        flight = batch.settle_token
        assert isinstance(flight, _InFlight)
        try:
            await self._land(flight)
            delete, retry = plan_settlement(flight.messages, flight.expected, outcome, flight.queue.fifo)
            base, maximum = self.settings.backoff_base, self.settings.backoff_max
            problems = await asyncio.gather(
                self._delete(flight.queue, self._duplicates.every(delete)),
                self._change_visibility(
                    flight.queue,
                    self._duplicates.latest(retry),
                    lambda m: retry_delay(m.receive_count, base, maximum, self._rng),
                ),
            )
            if not problems[0]:  # a message whose delete failed is redelivered as it always was
                self._duplicates.deleted(delete)
        finally:
            self._duplicates.release(flight.messages)
            self._gate.release()
        found = [p for p in problems if p]
        if found:
            self._health.failed()  # until the endpoint answers again
            raise SourceError(f"queue {self.settings.queue}: {'; '.join(found)}")

    async def _delete(self, queue: QueueInfo, messages: Sequence[Message]) -> str:
        if not messages:
            return ""
        sqs = await self._clients.client("sqs")
        with self._health.calls.watching():
            deleted, problem = await delete_messages(sqs, queue.url, messages)
        if self._metrics is not None:
            # A message's later copies are deleted with it: count it once.
            self._metrics.count("deleted", min(deleted, len({m.message_id for m in messages})))
        return problem

    async def _change_visibility(
        self, queue: QueueInfo, messages: Sequence[Message], timeout: Callable[[Message], int]
    ) -> str:
        if not messages:
            return ""
        sqs = await self._clients.client("sqs")
        with self._health.calls.watching():
            return await change_visibility(sqs, queue.url, messages, timeout)

    def failure_context(self, batch: Batch) -> Mapping[str, Any]:
        return {"requestPayload": batch.event()}

    async def close(self) -> None:
        # Runners stop before their sources, so no handler still needs the heartbeat now.
        for flight in list(self._flights):
            flight.landed = True
            if flight.heartbeat is not None:
                flight.heartbeat.cancel()
            self._duplicates.release(flight.messages)
        self._flights.clear()
        if self._background:
            await asyncio.wait(list(self._background), timeout=5)
