"""The MQTT source against a real mosquitto: record shape, batching, acks, redelivery, outages."""

from __future__ import annotations

import base64
import json
import logging
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from pipelined.aws import AwsClients
from pipelined.config import load_config
from pipelined.core.identity import FunctionIdentity
from pipelined.core.records import Batch, Outcome
from pipelined.observe.metrics import Metrics
from pipelined.sources.base import PushSource, SourceContext
from pipelined.sources.mqtt import session as mqtt_session
from pipelined.sources.mqtt.session import client_options
from pipelined.sources.registry import build_source
from pipelined.state import StateStore
from tests.sources.push_support import next_pushed, start_pushing
from tests.support import (
    DaemonProcess,
    MosquittoBroker,
    free_port,
    read_records,
    run_cli,
    until,
    wait_until,
    write_config,
)

Broker = Callable[..., MosquittoBroker]
Daemon = Callable[..., DaemonProcess]


# --- helpers (test_minio.py uses them too) --------------------------------------------------------------


def publish(
    port: int,
    topic: str,
    *payloads: str | bytes,
    qos: int = 1,
    retain: bool = False,
    user_properties: Iterable[tuple[str, str]] = (),
) -> None:
    """Publish with a throw-away MQTT 5 client and wait until the broker has every message."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4()}", protocol=paho.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        properties = None
        if user_properties:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.UserProperty = list(user_properties)
        for payload in payloads:
            client.publish(topic, payload, qos=qos, retain=retain, properties=properties).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


async def next_batch(source: PushSource, timeout: float = 5.0) -> Batch:
    """The next batch the source pushed."""
    return await next_pushed(source, timeout)


def mqtt_config(
    tmp_path: Path, port: int, events: list[dict[str, Any]], client_id: str = "", **function: Any
) -> Path:
    """A config whose function "fn" records to tmp_path/records.jsonl."""
    fn = {
        "handler": "mqtt_handlers.record",
        "environment": {"RECORD_FILE": str(tmp_path / "records.jsonl")},
        "events": events,
        **function,
    }
    mqtt = {"url": f"mqtt://127.0.0.1:{port}", "client_id": client_id or f"t{uuid.uuid4().hex[:6]}"}
    return write_config(tmp_path, {"fn": fn}, mqtt=mqtt)


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[StateStore]:
    store = await StateStore.open(tmp_path / "state")
    yield store
    await store.close()


@pytest.fixture
async def open_source(state: StateStore) -> AsyncIterator[Callable[[Path], Awaitable[PushSource]]]:
    """Factory: the started source of function "fn"'s first event, built as the daemon builds it."""
    opened: list[PushSource] = []

    async def start(path: Path) -> PushSource:
        config = load_config(path)
        event = config.functions["fn"].events[0]
        assert event.name is not None
        ctx = SourceContext(
            function=FunctionIdentity("fn", config.aws.region),
            reserved_concurrency=None,
            state=state,
            aws=AwsClients(config.aws),
            mqtt=config.mqtt,
            metrics=Metrics().for_source("fn", event.name),
        )
        source = build_source(event, ctx)
        assert isinstance(source, PushSource)
        opened.append(source)
        await start_pushing(source)
        return source

    yield start
    for source in opened:
        await source.close()


def payloads(batch: Batch) -> list[Any]:
    return [r.payload.get("payload") for r in batch.records]


# --- in process ----------------------------------------------------------------------------------------


async def test_messages_become_records_in_the_documented_shape(
    tmp_path: Path, mosquitto: Broker, open_source: Callable[[Path], Awaitable[PushSource]]
) -> None:
    broker = mosquitto()
    publish(broker.port, "sensors/r/reading", "kept by the broker", retain=True)
    event = {"type": "mqtt", "topic": "sensors/+/reading", "maximum_batching_window": "300ms"}
    path = mqtt_config(tmp_path, broker.port, [event])
    source = await open_source(path)
    await until(lambda: source.healthy, timeout=5, message="connected")
    publish(broker.port, "sensors/a/reading", '{"temp": 21.5}', user_properties=[("unit", "C"), ("tag", "x")])
    publish(broker.port, "sensors/b/reading", b"\xff\xfe\x00binary", qos=0)
    publish(broker.port, "sensors/c/reading", "plain text", user_properties=[("tag", "x"), ("tag", "y")])
    publish(broker.port, "other/topic", "not subscribed")

    batch = await next_batch(source)
    assert batch.wrap_records
    retained, json_message, binary, text = (dict(r.payload) for r in batch.records)
    assert retained["retain"] is True and retained["payload"] == "kept by the broker"
    assert list(json_message) == [
        "topic",
        "payload",
        "qos",
        "retain",
        "messageId",
        "receivedAt",
        "userProperties",
    ]
    assert json_message["topic"] == "sensors/a/reading"
    assert json_message["payload"] == '{"temp": 21.5}'
    assert json_message["qos"] == 1 and json_message["retain"] is False
    assert json_message["userProperties"] == {"unit": "C", "tag": "x"}
    assert json_message["receivedAt"].endswith("Z")
    assert batch.records[1].id == json_message["messageId"]
    assert binary["payloadEncoding"] == "base64" and binary["qos"] == 0
    assert base64.b64decode(binary["payload"]) == b"\xff\xfe\x00binary"
    assert text["userProperties"] == {"tag": ["x", "y"]}
    # Filter patterns see the decoded JSON, or the text as it is.
    assert [r.filter_data for r in batch.records[1:]] == [
        {"payload": {"temp": 21.5}},
        {"payload": binary["payload"]},
        {"payload": "plain text"},
    ]
    await source.settle(batch, Outcome(succeeded=batch.records))
    await source.close()

    # Acknowledged: a new connection of the same session gets only what was published meanwhile.
    publish(broker.port, "sensors/d/reading", "published while disconnected")
    again = await open_source(path)
    assert payloads(await next_batch(again)) == ["published while disconnected"]


async def test_batches_fill_up_to_batch_size_or_until_the_window_ends(
    tmp_path: Path, mosquitto: Broker, open_source: Callable[[Path], Awaitable[PushSource]]
) -> None:
    broker = mosquitto()
    event = {"type": "mqtt", "topic": "b/#", "batch_size": 2, "maximum_batching_window": "200ms"}
    source = await open_source(mqtt_config(tmp_path, broker.port, [event]))
    await until(lambda: source.healthy, timeout=5, message="connected")
    publish(broker.port, "b/1", "one", "two", "three")
    first = await next_batch(source)
    second = await next_batch(source)
    assert payloads(first) == ["one", "two"] and payloads(second) == ["three"]


async def test_failed_message_is_redelivered_by_the_broker_and_acked_once_done(
    tmp_path: Path,
    mosquitto: Broker,
    open_source: Callable[[Path], Awaitable[PushSource]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mqtt_session, "REDELIVERY_DELAY", 0.05)
    broker = mosquitto()
    path = mqtt_config(tmp_path, broker.port, [{"type": "mqtt", "topic": "r/#"}])
    source = await open_source(path)
    await until(lambda: source.healthy, timeout=5, message="connected")
    publish(broker.port, "r/1", "try me twice")
    batch = await next_batch(source)
    # E.g. the on-failure destination was down: the record must come back, from the broker.
    await source.settle(batch, Outcome(failed=batch.records))
    again = await next_batch(source)
    assert payloads(again) == ["try me twice"]
    assert again.records[0].id != batch.records[0].id  # a new delivery
    await source.settle(again, Outcome(dead_lettered=again.records))
    await source.close()
    publish(broker.port, "r/2", "next")
    reopened = await open_source(path)
    assert payloads(await next_batch(reopened)) == ["next"]


async def test_a_changed_topic_filter_replaces_the_old_subscription(
    tmp_path: Path,
    mosquitto: Broker,
    open_source: Callable[[Path], Awaitable[PushSource]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pipelined.sources.mqtt")
    broker = mosquitto()
    old = await open_source(mqtt_config(tmp_path, broker.port, [{"type": "mqtt", "topic": "old/#"}], "same"))
    await until(lambda: old.healthy, timeout=5, message="connected")
    await old.close()
    publish(broker.port, "old/1", "queued for the old filter")
    new = await open_source(mqtt_config(tmp_path, broker.port, [{"type": "mqtt", "topic": "new/#"}], "same"))
    await until(lambda: new.healthy, timeout=5, message="connected")
    publish(broker.port, "old/2", "after the change")
    publish(broker.port, "new/1", "wanted")
    assert payloads(await next_batch(new)) == ["wanted"]
    assert "unsubscribed from 'old/#'" in caplog.text


def test_client_options_cover_tls_credentials_and_websockets(tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_text("")
    path = write_config(
        tmp_path,
        {"fn": {"handler": "mqtt_handlers.record"}},
        mqtt={
            "url": "mqtts://broker.example:8884",
            "username": "user",
            "password": "${MQTT_TEST_PASSWORD}",
            "ca_file": "ca.pem",
            "cert_file": "cert.pem",
            "key_file": "key.pem",
        },
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MQTT_TEST_PASSWORD", "s3cret")
        options = client_options(load_config(path).mqtt)
    assert (options["hostname"], options["port"], options["transport"]) == ("broker.example", 8884, "tcp")
    assert (options["username"], options["password"]) == ("user", "s3cret")
    tls = options["tls_params"]
    assert (tls.ca_certs, tls.certfile, tls.keyfile) == tuple(
        str(tmp_path / n) for n in ("ca.pem", "cert.pem", "key.pem")
    )
    path = write_config(
        tmp_path, {"fn": {"handler": "mqtt_handlers.record"}}, mqtt={"url": "wss://u%40x:p%3Aw@example/ws"}
    )
    options = client_options(load_config(path).mqtt)
    assert (options["port"], options["transport"], options["websocket_path"]) == (443, "websockets", "/ws")
    assert (options["username"], options["password"]) == ("u@x", "p:w")
    assert "tls_params" in options
    plain = client_options(load_config(mqtt_config(tmp_path, 1883, [])).mqtt)
    assert "tls_params" not in plain and plain["port"] == 1883


def _certificates(directory: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in `directory`."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def issue(name: str, issuer: x509.Name | None, signer: Any, ca: bool) -> tuple[Any, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer or subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return key, builder.sign(signer or key, hashes.SHA256())

    ca_key, ca = issue("test CA", None, None, True)
    for name in ("server", "client"):
        key, cert = issue(name, ca.subject, ca_key, False)
        (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (directory / f"{name}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))


async def test_mqtts_with_a_private_ca_and_a_client_certificate(
    tmp_path: Path, open_source: Callable[[Path], Awaitable[PushSource]]
) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    _certificates(certs)
    broker = MosquittoBroker(tmp_path / "tls-broker")
    tls_port = free_port()
    with broker.config.open("a") as conf:
        conf.write(
            f"listener {tls_port} 127.0.0.1\ncafile {certs}/ca.pem\ncertfile {certs}/server.pem\n"
            f"keyfile {certs}/server.key\nrequire_certificate true\n"
        )
    broker.start()
    try:
        path = write_config(
            tmp_path,
            {"fn": {"handler": "mqtt_handlers.record", "events": [{"type": "mqtt", "topic": "secure/#"}]}},
            mqtt={
                "url": f"mqtts://127.0.0.1:{tls_port}",
                "client_id": "tls",
                "ca_file": str(certs / "ca.pem"),
                "cert_file": str(certs / "client.pem"),
                "key_file": str(certs / "client.key"),
            },
        )
        source = await open_source(path)
        await until(lambda: source.healthy, timeout=5, message="connected over TLS")
        publish(broker.port, "secure/1", "encrypted in transit")
        assert payloads(await next_batch(source)) == ["encrypted in transit"]
    finally:
        broker.stop()


# --- the daemon ----------------------------------------------------------------------------------------


def _lines(tmp_path: Path, phase: str) -> list[dict[str, Any]]:
    return [r for r in read_records(tmp_path / "records.jsonl") if r["phase"] == phase]


def test_failing_handler_is_retried_then_dead_lettered_and_acked(
    tmp_path: Path, mosquitto: Broker, daemon: Daemon
) -> None:
    broker = mosquitto()
    event = {
        "type": "mqtt",
        "topic": "jobs/#",
        "maximum_retry_attempts": 2,
        "retry_backoff": {"base": "50ms", "max": "100ms"},
        "filter_patterns": [{"payload": {"kind": ["job"]}}],
    }
    config = mqtt_config(tmp_path, broker.port, [event], handler="mqtt_handlers.fail_poison")
    first = daemon(config)
    publish(broker.port, "jobs/1", '{"kind": "job", "poison": true}', '{"kind": "chatter"}')
    wait_until(lambda: "1 parked" in run_cli("dlq", "list", "-c", str(config)).stdout, timeout=10)
    assert len(_lines(tmp_path, "called")) == 3  # 1 + maximum_retry_attempts
    assert first.metric("pipelined_events_total", source="mqtt-0", outcome="filtered") == 1
    entry = run_cli("dlq", "list", "-c", str(config)).stdout
    assert "RetriesExhausted" in entry
    first.send_signal(signal.SIGTERM)
    assert first.wait() == 0

    # Dead-lettered and filtered messages were acknowledged: after a restart only the new one comes.
    daemon(config)
    publish(broker.port, "jobs/2", '{"kind": "job", "n": 2}')
    wait_until(lambda: len(_lines(tmp_path, "called")) == 4, timeout=10)
    assert _lines(tmp_path, "called")[-1]["payloads"] == ['{"kind": "job", "n": 2}']


def test_message_is_redelivered_after_kill_9_mid_invocation(
    tmp_path: Path, mosquitto: Broker, daemon: Daemon
) -> None:
    broker = mosquitto()
    config = mqtt_config(
        tmp_path, broker.port, [{"type": "mqtt", "topic": "k/#"}], handler="mqtt_handlers.slow"
    )
    doomed = daemon(config, env={"SLEEP_SECONDS": 60})
    publish(broker.port, "k/1", "survive a crash")
    wait_until(lambda: _lines(tmp_path, "start"), timeout=10)
    assert doomed.process is not None
    doomed.process.kill()
    doomed.process.wait(10)

    daemon(config, env={"SLEEP_SECONDS": 0})
    ended = wait_until(lambda: _lines(tmp_path, "end"), timeout=15)
    assert ended[0]["payloads"] == ["survive a crash"]
    assert ended[0]["pid"] != _lines(tmp_path, "start")[0]["pid"]


def test_broker_outage_is_reported_and_no_qos1_message_is_lost(
    tmp_path: Path, mosquitto: Broker, daemon: Daemon
) -> None:
    broker = mosquitto()
    config = mqtt_config(tmp_path, broker.port, [{"type": "mqtt", "topic": "o/#"}])
    running = daemon(config)

    def delivered() -> set[str]:
        return {r["payload"] for r in _lines(tmp_path, "done")}

    publish(broker.port, "o/1", "before")
    wait_until(lambda: delivered() == {"before"})

    broker.stop()
    wait_until(lambda: running.get("/readyz")[0] == 503, timeout=10, message="/readyz 503")
    wait_until(lambda: running.metric("pipelined_source_errors_total", source="mqtt-0") >= 1, timeout=10)
    assert running.metric("pipelined_source_up", source="mqtt-0") == 0
    broker.start()
    # Queued by the broker for the persistent session, whether or not the daemon is back yet.
    publish(broker.port, "o/2", "during", "reconnect")
    wait_until(running.ready, timeout=15, message="/readyz 200 again")
    publish(broker.port, "o/3", "after")
    wait_until(lambda: delivered() == {"before", "during", "reconnect", "after"}, timeout=10)
    wait_until(lambda: running.metric("pipelined_source_up", source="mqtt-0") == 1, timeout=5)

    running.send_signal(signal.SIGTERM)
    assert running.wait() == 0
    publish(broker.port, "o/4", "while", "the daemon", "was down")
    daemon(config)
    wait_until(lambda: {"while", "the daemon", "was down"} <= delivered(), timeout=10)


def test_daemon_starts_unready_while_the_broker_is_down(
    tmp_path: Path, mosquitto: Broker, daemon: Daemon
) -> None:
    broker = mosquitto()
    broker.stop()
    config = mqtt_config(tmp_path, broker.port, [{"type": "mqtt", "topic": "u/#"}])
    waiting = daemon(config, wait_ready=False)
    # With process isolation the source is listed only once its function's first worker is up.
    wait_until(
        lambda: _status(waiting) == 503 and json.loads(waiting.get("/readyz")[1])["sources"],
        timeout=15,
        message="/readyz 503 listing the source while the broker is down",
    )
    body = json.loads(waiting.get("/readyz")[1])
    assert body["sources"] == {"fn/mqtt-0": False}
    broker.start()
    wait_until(waiting.ready, timeout=15, message="ready once connected")
    publish(broker.port, "u/1", "hello")
    wait_until(lambda: _lines(tmp_path, "done"), timeout=10)


def _status(process: DaemonProcess) -> int:
    assert process.process is not None and process.process.poll() is None, process.logs()
    try:
        return process.get("/readyz")[0]
    except OSError:
        return 0
