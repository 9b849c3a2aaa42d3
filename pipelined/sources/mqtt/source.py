"""MQTT topics as an event source: each message a record, batched, acknowledged after it is settled.

At-least-once for QoS 1: a message is acknowledged (PUBACK) only once every record made from it was
settled as done (succeeded, filtered or dead-lettered); one left *failed* is redelivered by the broker
(mqtt_session.py). QoS 0 is at-most-once. The design and its limits are in docs/sources-mqtt.md.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiomqtt
from paho.mqtt.properties import Properties

from pipelined.config import MqttSource, S3Source
from pipelined.core.lambda_errors import LambdaError
from pipelined.core.records import Batch, Outcome, PartialFailureMode, Record
from pipelined.core.retry import RetryPolicy
from pipelined.core.timestamps import iso_millis
from pipelined.errors import SourceError
from pipelined.sources.mqtt.session import Connected, Lost, MqttConnection, Received
from pipelined.sources.push import PushSourceBase

if TYPE_CHECKING:
    from pipelined.config import EventSourceConfig
    from pipelined.sources.base import PushSource, SourceContext

log = logging.getLogger("pipelined.sources.mqtt")


# --- the source ----------------------------------------------------------------------------------------

# Turns one message into records (possibly none); raises SourceError for a message that cannot be one.
Converter = Callable[[aiomqtt.Message, float], list[Record]]


@dataclass(eq=False, slots=True)
class PendingAck:
    """A received message whose records are being processed; acked once all are settled and none failed."""

    received: Received
    remaining: int
    failed: bool = False


def user_properties(properties: Properties | None) -> dict[str, str | list[str]]:
    """MQTT 5 user properties as an object; a name sent more than once maps to the list of its values."""
    result: dict[str, str | list[str]] = {}
    for name, value in getattr(properties, "UserProperty", None) or []:
        if name not in result:
            result[name] = value
        else:
            existing = result[name]
            result[name] = [*existing, value] if isinstance(existing, list) else [existing, value]
    return result


def mqtt_record(message: aiomqtt.Message, received_at: float) -> Record:
    """One MQTT message as a record: UTF-8 payloads as text, others base64; filters see decoded JSON."""
    raw = bytes(message.payload)
    payload: dict[str, Any] = {"topic": message.topic.value}
    try:
        text = raw.decode("utf-8")
        payload["payload"] = text
        try:
            filter_value: Any = json.loads(text)
        except ValueError:
            filter_value = text
    except UnicodeDecodeError:
        payload["payload"] = filter_value = base64.b64encode(raw).decode("ascii")
        payload["payloadEncoding"] = "base64"
    message_id = str(uuid.uuid4())
    payload |= {
        "qos": message.qos,
        "retain": bool(message.retain),
        "messageId": message_id,
        "receivedAt": iso_millis(received_at),
        "userProperties": user_properties(message.properties),
    }
    return Record(message_id, payload, received_at, {"payload": filter_value})


class MqttEventSource(PushSourceBase):
    """Batches of records from one MQTT subscription, pushed to the runner; each message is acked once its
    records settle. A message the converter rejects is pushed as a rejected batch (when `reject_invalid`):
    the dispatcher sends it to the on-failure destination and it is acked once parked there."""

    def __init__(
        self,
        name: str,
        key: str,
        connection: MqttConnection,
        convert: Converter,
        batch_size: int,
        batching_window: float,
        concurrency: int,
        retry_policy: RetryPolicy,
        partial_failure_mode: PartialFailureMode | None = None,
        reject_invalid: bool = False,
    ) -> None:
        super().__init__(name, key)
        self.retry_policy = retry_policy
        self.connection = connection
        self._convert = convert
        self._batch_size = batch_size
        self._window = batching_window
        self._partial = partial_failure_mode
        self._reject_invalid = reject_invalid
        # One batch in flight keeps the broker's order; MinIO notifications may run several at once.
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._ready: deque[Record] = deque()
        self._held: deque[Lost | Connected] = deque()
        self._producer: asyncio.Task[None] | None = None

    @property
    def healthy(self) -> bool:
        return self.connection.connected

    async def _start(self) -> None:
        self.connection.start()
        self._producer = asyncio.create_task(self._produce(), name=f"{self.key} batches")

    def _stop_producing(self) -> None:
        if self._producer is not None:
            self._producer.cancel()

    async def _produce(self) -> None:
        while not self._stopping:
            try:
                batch = await self._next_batch()
            except SourceError as exc:
                self.sink.source_failed(exc)
                continue
            if batch is None:
                self.sink.health_changed()  # reconnected: refresh pipelined_source_up
                continue
            await self._slots.acquire()
            self.push(batch).add_done_callback(lambda _: self._slots.release())

    async def _next_batch(self) -> Batch | None:
        """The next batch: the first message, then more until the batch is full or its window ends."""
        if not self._ready:
            item = await self._next(None)
            if isinstance(item, Lost):
                raise SourceError(f"MQTT broker connection lost: {item.reason}")
            if not isinstance(item, Received):
                return None
            self._add(item)
        deadline = time.monotonic() + self._window
        while len(self._ready) < self._batch_size:
            item = await self._next(deadline)
            if item is None:
                break
            if not isinstance(item, Received):
                self._held.append(item)  # for the next batch, after this one
                break
            self._add(item)
        if not self._ready:
            return None
        count = min(self._batch_size, len(self._ready))
        records = tuple(self._ready.popleft() for _ in range(count))
        return Batch(records, partial_failure_mode=self._partial)

    async def _next(self, deadline: float | None) -> Received | Lost | Connected | None:
        """The next inbox item: waiting for it (deadline None), until `deadline`, or None."""
        if self._held:
            return self._held.popleft()
        inbox = self.connection.inbox
        if deadline is None:
            return await inbox.get()
        if not inbox.empty():
            return inbox.get_nowait()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            # Not wait_for: on 3.11 it can drop an item that arrives while it is being cancelled.
            async with asyncio.timeout(remaining):
                return await inbox.get()
        except TimeoutError:
            return None

    def _add(self, received: Received) -> None:
        message = received.message
        if not message.topic.matches(self.connection.topic):
            # A subscription the session kept from an earlier configuration: not ours any more.
            log.info(
                "%s: dropping message on %r (not %r)",
                self.connection.key,
                message.topic.value,
                self.connection.topic,
            )
            self.connection.ack(received)
            return
        try:
            records = self._convert(message, received.at)
        except SourceError as exc:
            if not self._reject_invalid:
                raise
            self._reject(received, exc)
            return
        if not records:
            self.connection.ack(received)
            return
        pending = PendingAck(received, len(records))
        self._ready.extend(dataclasses.replace(r, settle_token=pending) for r in records)

    def _reject(self, received: Received, error: SourceError) -> None:
        """Hand a message that cannot become records to the dispatcher, which parks it."""
        log.warning(
            "%s: message on %r is rejected (%s); it goes to the on-failure destination",
            self.connection.key,
            received.message.topic.value,
            error,
        )
        record = dataclasses.replace(
            mqtt_record(received.message, received.at), settle_token=PendingAck(received, 1)
        )
        rejection = LambdaError("InvalidNotification", str(error), None)
        self.push(Batch((record,), wrap_records=False, rejection=rejection))

    async def settle(self, batch: Batch, outcome: Outcome) -> None:
        for record in (*outcome.succeeded, *outcome.filtered, *outcome.dead_lettered):
            self._release(record.settle_token, failed=False)
        for record in outcome.failed:
            self._release(record.settle_token, failed=True)

    def _release(self, pending: PendingAck, failed: bool) -> None:
        pending.remaining -= 1
        pending.failed = pending.failed or failed
        if pending.remaining > 0:
            return
        if pending.failed:
            log.warning(
                "%s: message on %r left unacknowledged for redelivery",
                self.connection.key,
                pending.received.message.topic.value,
            )
            self.connection.redeliver(pending.received)
        else:
            self.connection.ack(pending.received)

    def failure_context(self, batch: Batch) -> Mapping[str, Any]:
        return {"requestPayload": batch.event()}

    async def close(self) -> None:
        self._stop_producing()
        await self.connection.close()


# --- factories -----------------------------------------------------------------------------------------


def retry_policy_for(cfg: MqttSource | S3Source) -> RetryPolicy:
    """Retries in the daemon, as for Lambda's asynchronous invocations, then the on-failure destination."""
    return RetryPolicy(
        maximum_retry_attempts=cfg.maximum_retry_attempts,
        backoff_base=cfg.retry_backoff.base,
        backoff_max=cfg.retry_backoff.max,
        attempts_condition="RetriesExhausted",
        age_condition="EventAgeExceeded",
    )


def session_for(ctx: SourceContext, name: str, topic: str, qos: int, in_flight: int) -> MqttConnection:
    """The persistent session of one source; its client id is unique per function and source.

    With `mqtt.shared_group` the source subscribes as a member of an MQTT 5 shared subscription, so the
    broker splits the topic between the daemons of a cluster; each member's session has its own id.
    """
    key = f"{ctx.function.name}/{name}"
    client_id = f"{ctx.mqtt.client_id}-{ctx.function.name}-{name}"
    if ctx.mqtt.shared_group is not None:
        topic = f"$share/{ctx.mqtt.shared_group}/{topic}"
        if ctx.leases.member_id is not None:
            client_id += f"-{ctx.leases.member_id}"
    return MqttConnection(ctx.mqtt, key, client_id, topic, qos, in_flight, ctx.state)


def subscription_qos(key: str, qos: int) -> int:
    """The QoS to subscribe with: 2 becomes 1, the highest that survives a crash mid-invocation."""
    if qos == 2:
        # paho sends PUBREC as soon as a QoS 2 message arrives, after which the broker never sends it
        # again: a crash before the handler ran would lose it. QoS 1 with a late PUBACK does not.
        log.info("%s: qos 2 is subscribed as QoS 1 so that messages are acknowledged after the handler", key)
        return 1
    return qos


def build_mqtt(cfg: EventSourceConfig, ctx: SourceContext) -> PushSource:
    """The source for a `type: mqtt` event source."""
    assert isinstance(cfg, MqttSource) and cfg.name is not None
    key = f"{ctx.function.name}/{cfg.name}"
    qos = subscription_qos(key, cfg.qos)
    session = session_for(ctx, cfg.name, cfg.topic, qos, cfg.batch_size)
    # One batch in flight keeps the order in which the broker delivered the messages.
    return MqttEventSource(
        cfg.name,
        key,
        session,
        lambda message, received_at: [mqtt_record(message, received_at)],
        cfg.batch_size,
        cfg.maximum_batching_window,
        1,
        retry_policy_for(cfg),
    )
