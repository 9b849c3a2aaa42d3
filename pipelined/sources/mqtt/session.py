"""One persistent MQTT 5 session per source: connect, subscribe, reconnect with backoff, acknowledge late.

The session outlives the daemon: a fixed client id, clean start off and a session expiry, so the broker
keeps the subscription and queues QoS 1 messages while pipelined is down. paho acknowledges nothing by
itself (manual acks); the source acks a message once its records are settled, and a message left failed
is redelivered by reconnecting (brokers resend unacknowledged messages only on a new connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from pipelined.config import MqttConfig
from pipelined.core.retry import backoff
from pipelined.errors import SourceError
from pipelined.state import StateStore
from pipelined.state.markers import MQTT_SUBSCRIPTION

log = logging.getLogger("pipelined.sources.mqtt")

# A removed source's session must not make the broker queue messages for it forever.
SESSION_EXPIRY = 7 * 24 * 3600
RECONNECT_BACKOFF_MAX = 10.0
# Pause before reconnecting to get failed messages back: coalesces failures, paces a broken destination.
REDELIVERY_DELAY = 2.0
# Brokers let ~20 unacknowledged messages be in flight per client unless told more (Receive Maximum).
MIN_RECEIVE_MAXIMUM = 20
_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883, "ws": 80, "wss": 443}


def client_options(config: MqttConfig) -> dict[str, Any]:
    """Keyword arguments for `aiomqtt.Client` from the `mqtt:` section: URL, credentials, TLS."""
    url = urlsplit(config.url)
    options: dict[str, Any] = {
        "hostname": url.hostname,
        "port": url.port or _DEFAULT_PORTS[url.scheme],
        # The URL's user:password@ is the fallback; it is percent-encoded, the config's keys are not.
        "username": config.username if config.username is not None else _unquoted(url.username),
        "password": config.password if config.password is not None else _unquoted(url.password),
        "keepalive": math.ceil(config.keepalive),
        "protocol": aiomqtt.ProtocolVersion.V5,
        "transport": "websockets" if url.scheme in ("ws", "wss") else "tcp",
    }
    if url.scheme in ("ws", "wss"):
        options["websocket_path"] = url.path or "/mqtt"
    if url.scheme in ("mqtts", "wss"):
        options["tls_params"] = aiomqtt.TLSParameters(
            ca_certs=str(config.ca_file) if config.ca_file else None,  # None: the system's CAs
            certfile=str(config.cert_file) if config.cert_file else None,
            keyfile=str(config.key_file) if config.key_file else None,
        )
    return options


def _unquoted(value: str | None) -> str | None:
    return unquote(value) if value is not None else None


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


# --- the connection ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """A message as it came off one connection (acks must go back on that same connection)."""

    message: aiomqtt.Message
    client: aiomqtt.Client
    at: float


@dataclass(frozen=True, slots=True)
class Lost:
    """The broker became unreachable (reported once per outage, so the dispatcher counts outages)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Connected:
    """The session is (re-)established and subscribed."""


class MqttConnection:
    """One persistent MQTT 5 session for one source: subscribe, reconnect with backoff, acknowledge late."""

    def __init__(
        self,
        config: MqttConfig,
        key: str,
        client_id: str,
        topic: str,
        qos: int,
        receive_maximum: int,
        state: StateStore,
    ) -> None:
        self.key = key
        self.client_id = client_id
        self.topic = topic
        self.qos = qos
        self.receive_maximum = min(65535, max(MIN_RECEIVE_MAXIMUM, receive_maximum))
        self.inbox: asyncio.Queue[Received | Lost | Connected] = asyncio.Queue()
        self.connected = False
        self._url = _without_credentials(config.url)
        self._options = client_options(config)
        self._state = state
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._redeliver = asyncio.Event()
        self._in_outage = False

    def start(self) -> None:
        """Connect in the background; the daemon starts (unready) even while the broker is down."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"mqtt {self.key}")

    async def close(self) -> None:
        """Disconnect; the session and every unacknowledged message stay with the broker."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._client = None
        self.connected = False

    def ack(self, received: Received) -> None:
        """Acknowledge a message, if the connection it came on is still the live one."""
        if received.message.qos == 0:
            return
        if received.client is not self._client or not self.connected:
            # The broker sends it again on the new connection (same session): acking now could hit
            # a reused packet id of a different message.
            log.debug(
                "%s: message %d arrived on an older connection; not acked", self.key, received.message.mid
            )
            return
        rc = received.client._client.ack(received.message.mid, received.message.qos)
        if rc != paho.MQTT_ERR_SUCCESS:
            log.warning("%s: acknowledging message %d failed (%s)", self.key, received.message.mid, rc)

    def redeliver(self, received: Received) -> None:
        """Make the broker send an unacknowledged message again, by reconnecting shortly."""
        if received.message.qos > 0 and received.client is self._client:
            self._redeliver.set()

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                client = self._new_client()
                async with client:
                    await self._subscribe(client)
                    failures = 0
                    self._up(client)
                    await self._serve(client)
                self._down()
                log.info("%s: reconnecting so that the broker redelivers failed messages", self.key)
            except Exception as exc:  # whatever the broker or network did, the daemon keeps going
                failures += 1
                self._down(str(exc) or type(exc).__name__)
                delay = backoff(failures - 1, 0.25, RECONNECT_BACKOFF_MAX)
                log.warning(
                    "%s: MQTT broker %s unavailable (%s); reconnecting in %.1fs",
                    self.key,
                    self._url,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)

    def _new_client(self) -> aiomqtt.Client:
        client = aiomqtt.Client(
            **self._options,
            identifier=self.client_id,
            clean_start=False,
            properties=self._connect_properties(),
        )
        # Acks are sent by settle(), after the handler ran, never by paho on receipt.
        client._client.manual_ack_set(True)
        return client

    def _connect_properties(self) -> Properties:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho lacks hints
        properties.SessionExpiryInterval = SESSION_EXPIRY
        properties.ReceiveMaximum = self.receive_maximum
        return properties

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        previous = await self._previous_topic()
        if previous is not None and previous != self.topic:
            # The session remembers subscriptions: a changed topic filter must drop the old one.
            await client.unsubscribe(previous)
            log.info("%s: unsubscribed from %r (no longer configured)", self.key, previous)
        # Retained messages only for a new subscription, not again on every reconnect.
        options = SubscribeOptions(qos=self.qos, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        granted = await client.subscribe(self.topic, options=options)
        for code in granted:
            if isinstance(code, ReasonCode) and code.is_failure:
                raise SourceError(f"the broker refused the subscription to {self.topic!r}: {code}")
            if isinstance(code, ReasonCode) and code.value < self.qos:
                log.warning("%s: broker granted QoS %d for %r only", self.key, code.value, self.topic)
        if previous != self.topic:
            await self._state.markers.put(self.key, MQTT_SUBSCRIPTION, self.client_id, self.topic)

    async def _previous_topic(self) -> str | None:
        return await self._state.markers.get(self.key, MQTT_SUBSCRIPTION, self.client_id)

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Queue incoming messages until the connection drops (raises) or failed messages need redelivery."""
        reader = asyncio.create_task(self._read(client))
        waiter = asyncio.create_task(self._redeliver.wait())
        try:
            await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not reader.done():
                await asyncio.wait({reader}, timeout=REDELIVERY_DELAY)
            if reader.done():
                reader.result()  # raises the MqttError of the lost connection
                raise SourceError("the message stream ended")
        finally:
            reader.cancel()
            waiter.cancel()

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self.inbox.put_nowait(Received(message, client, time.time()))

    def _up(self, client: aiomqtt.Client) -> None:
        self._client = client
        self.connected = True
        self._in_outage = False
        # Failures from before this connection are redelivered by it anyway.
        self._redeliver.clear()
        log.info(
            "%s: connected to %s as %r, subscribed to %r", self.key, self._url, self.client_id, self.topic
        )
        self.inbox.put_nowait(Connected())

    def _down(self, reason: str | None = None) -> None:
        self._client = None
        self.connected = False
        if reason is not None and not self._in_outage:
            self._in_outage = True
            self.inbox.put_nowait(Lost(reason))
