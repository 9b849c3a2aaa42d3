"""The routing table PutEvents consults: which rules match, what each target receives, what dev creates."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelined.config import load_config
from pipelined.devmode import wanted_resources
from pipelined.sources.eventbridge import EventRouter
from tests.config.support import write

CONFIG = """
event_buses:
  b: {}
functions:
  f:
    code: fn
    handler: app.handle
    events:
      - {type: eventbridge, name: whole, pattern: {source: [s]}}
      - {type: eventbridge, name: path, pattern: {source: [s]}, input_path: "$.detail.inner"}
      - {type: eventbridge, name: fixed, pattern: {source: [s]}, input: '{"fixed": true}'}
      - {type: eventbridge, name: paused, enabled: false, pattern: {source: [s]}}
      - type: eventbridge
        name: other-bus
        bus: b
        pattern: {source: [s]}
        dead_letter: arn:aws:sqs:us-east-1:000000000000:rule-dlq
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def handle(event, context): ...\n")
    return tmp_path


def test_matching_rules_of_the_bus_give_each_target_its_input(project: Path) -> None:
    config = load_config(write(project, CONFIG))
    router = EventRouter(config)
    event = {"source": "s", "detail": {"inner": {"x": 1}}}
    deliveries = router.route("default", event, 0)
    assert [(d.rule.name, d.payload) for d in deliveries] == [
        ("f-fixed", {"fixed": True}),
        ("f-path", {"x": 1}),
        ("f-whole", event),
    ]
    assert router.route("default", {"source": "t"}, 0) == []
    assert [d.rule.name for d in router.route("b", event, 0)] == ["f-other-bus"]
    assert router.rule("default", "f-paused") is not None  # listed (DISABLED), never routed to
    policy = router.rule("b", "f-other-bus").policy  # type: ignore[union-attr]
    assert policy.dead_letter == "arn:aws:sqs:us-east-1:000000000000:rule-dlq"
    assert policy.rule_arn == "arn:aws:events:us-east-1:000000000000:rule/b/f-other-bus"


def test_dev_mode_creates_a_rules_dead_letter_queue(project: Path) -> None:
    assert wanted_resources(load_config(write(project, CONFIG))).queues == {"rule-dlq": None}
