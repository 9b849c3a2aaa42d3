"""`event_buses:` and `type: eventbridge` rules: what loads, and the FILE:LINE errors `validate` prints."""

from __future__ import annotations

from pathlib import Path

from pipelined.config import EventBridgeSource, load_config
from tests.config.support import problems_of, write
from tests.support import run_cli


def test_a_rule_loads_with_eventbridges_defaults(project: Path) -> None:
    path = write(
        project,
        """
        event_buses:
          orders: {archive: {retention: 7d}}
        functions:
          f:
            code: fn
            handler: app.handle
            events:
              - type: eventbridge
                bus: orders
                pattern: '{"source": [{"wildcard": "shop.*"}]}'
                dead_letter: {Arn: "arn:aws:sqs:us-east-1:000000000000:dlq"}
        """,
    )
    config = load_config(path)
    rule = config.functions["f"].events[0]
    assert isinstance(rule, EventBridgeSource)
    assert (rule.name, rule.bus, rule.dead_letter) == (
        "eventbridge-0",
        "orders",
        "arn:aws:sqs:us-east-1:000000000000:dlq",
    )
    assert (rule.retry_policy.maximum_retry_attempts, rule.retry_policy.maximum_event_age) == (185, 86400)
    assert config.event_buses["orders"].archive is not None
    assert config.event_buses["orders"].archive.retention == 7 * 86400
    assert "1 eventbridge" in config.summary()


def test_invalid_patterns_transformers_and_policies_are_reported_by_line(project: Path) -> None:
    path = write(
        project,
        """
        functions:
          f:
            code: fn
            handler: app.handle
            events:
              - type: eventbridge
                pattern: {source: [{cidr: "10.0.0.0/40"}]}
              - type: eventbridge
                bus: nope
                pattern: {source: [x]}
              - type: eventbridge
                pattern: {source: [x]}
                input_transformer:
                  input_paths_map: {id: "detail.id"}
                  input_template: '{"id": <id>, "who": <who>}'
              - type: eventbridge
                pattern: {source: [x]}
                input_path: "$.detail"
                input: {a: 1}
                retry_policy: {maximum_retry_attempts: 186, maximum_event_age: 25h}
                dead_letter: "arn:aws:sns:us-east-1:000000000000:t"
        """,
    )
    problems = problems_of(path)
    assert problems == [
        f"{path}:7: functions.f.events[0].pattern: invalid event pattern: source: "
        "'cidr' needs an IPv4 or IPv6 network such as 10.0.0.0/24, got \"10.0.0.0/40\"",
        f"{path}:14: functions.f.events[2].input_transformer.input_paths_map.id: 'detail.id' is not a "
        "JSONPath (it must start with '$')",
        f"{path}:20: functions.f.events[3].retry_policy.maximum_retry_attempts: "
        "must be between 0 and 185, got 186",
        f"{path}:20: functions.f.events[3].retry_policy.maximum_event_age: must be between 1m and 1d, "
        "got 25h",
        f"{path}:21: functions.f.events[3].dead_letter: must be 'sqlite' or an SQS queue URL or ARN, "
        "got 'arn:aws:sns:us-east-1:000000000000:t'",
    ]
    # Checks of a whole rule, then of the whole file, come once its fields are valid.
    text = path.read_text()
    text = text.replace('"10.0.0.0/40"', '"10.0.0.0/8"').replace('"detail.id"', '"$.detail.id"')
    text = text.replace("186", "185").replace("25h", "24h")
    text = text.replace('"arn:aws:sns:us-east-1:000000000000:t"', "sqlite")
    path.write_text(text)
    assert problems_of(path) == [
        f"{path}:15: functions.f.events[2].input_transformer.input_template: <who> is neither in "
        "input_paths_map nor a reserved name",
        f"{path}:18: functions.f.events[3].input_path: "
        "give at most one of input, input_path and input_transformer",
    ]
    text = text.replace(', "who": <who>', ', "rule": "<aws.events.rule-name>"')
    path.write_text(text.replace("\n        input: {a: 1}", ""))
    assert problems_of(path) == [
        f"{path}:9: functions.f.events[1].bus: no event bus named 'nope' in event_buses"
    ]
    checked = run_cli("validate", str(path))
    assert (
        checked.returncode != 0 and "functions.f.events[1].bus: no event bus named 'nope'" in checked.stderr
    )
