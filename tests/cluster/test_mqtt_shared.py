"""mqtt.shared_group: two members subscribe as one MQTT 5 shared subscription; the broker splits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.cluster.test_members import member_config
from tests.sources.mqtt.test_source import publish
from tests.support import DaemonProcess, read_records, wait_until


def test_members_of_a_shared_group_split_a_topic_and_each_message_runs_once(
    tmp_path: Path, pg_url: str, mosquitto: Callable[..., Any], daemon: Callable[..., DaemonProcess]
) -> None:
    broker = mosquitto()
    files = [tmp_path / f"m{i}" / "records.jsonl" for i in range(2)]
    fn = {
        "fn": {"handler": "mqtt_handlers.record", "events": [{"type": "mqtt", "topic": "jobs/#", "qos": 1}]}
    }
    members = []
    for i in range(2):
        config = member_config(tmp_path / f"m{i}", pg_url, f"m{i}", fn)
        text = config.read_text().replace(
            "functions:",
            f"mqtt:\n  url: mqtt://127.0.0.1:{broker.port}\n  shared_group: workers\nfunctions:",
            1,
        )
        config.write_text(text)
        members.append(daemon(config, {"RECORD_FILE": files[i]}))
    wait_until(lambda: all(m.metric("pipelined_source_up") == 1 for m in members), timeout=20)
    publish(broker.port, "jobs/a", *(f"job-{n}" for n in range(100)))

    def received() -> list[list[str]]:
        return [[line["payload"] for line in read_records(f)] for f in files]

    wait_until(lambda: sum(len(r) for r in received()) >= 100, timeout=30)
    per_member = received()
    counts = Counter(p for r in per_member for p in r)
    assert set(counts) == {f"job-{n}" for n in range(100)} and max(counts.values()) == 1
    assert all(per_member), f"the broker gave one member everything: {[len(r) for r in per_member]}"
    assert "subscribed to '$share/workers/jobs/#'" in members[0].logs()
