"""Source markers: kept apart from checkpoints, across restarts."""

from __future__ import annotations

from pathlib import Path

from pipelined.state import StateStore
from pipelined.state.markers import MQTT_SUBSCRIPTION, STREAM_RESET


async def test_a_marker_survives_reopen_and_is_replaced_not_duplicated(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path)
    await store.markers.put("fn/m", MQTT_SUBSCRIPTION, "client-1", "a/#")
    await store.markers.put("fn/m", MQTT_SUBSCRIPTION, "client-1", "b/#")
    await store.close()
    store = await StateStore.open(tmp_path)
    try:
        assert await store.markers.get("fn/m", MQTT_SUBSCRIPTION, "client-1") == "b/#"
        assert await store.markers.get("fn/m", MQTT_SUBSCRIPTION, "client-2") is None
        assert [(m.kind, m.key, m.value) for m in await store.markers.list("fn/m")] == [
            (MQTT_SUBSCRIPTION, "client-1", "b/#")
        ]
        assert await store.checkpoints.list() == []
    finally:
        await store.close()


async def test_deleting_one_kind_keeps_the_others(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path)
    try:
        await store.markers.put("fn/s", STREAM_RESET, STREAM_RESET, "LATEST")
        await store.markers.put("fn/s", MQTT_SUBSCRIPTION, "c", "t")
        await store.markers.put("fn/other", STREAM_RESET, STREAM_RESET, "TRIM_HORIZON")
        assert await store.markers.delete("fn/s", STREAM_RESET) == 1
        assert [(m.source, m.kind) for m in await store.markers.list()] == [
            ("fn/other", STREAM_RESET),
            ("fn/s", MQTT_SUBSCRIPTION),
        ]
    finally:
        await store.close()
