"""PutEvents entries, the envelope, and what a rule's target receives (input path and transformer)."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from pipelined.core.event_input import InputError, RuleContext, compile_path, compile_transformer, resolve
from pipelined.core.eventbridge_events import Entry, EntryError, bus_name, envelope, parse_entry

RULE = RuleContext("f-orders", "arn:aws:events:us-east-1:000000000000:rule/f-orders", "2026-01-01T00:00:00Z")
EVENT = {
    "version": "0",
    "id": "e-1",
    "detail-type": "Order Placed",
    "source": "shop",
    "account": "000000000000",
    "time": "2026-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:s3:::a", "arn:aws:s3:::b"],
    "detail": {"id": 7, "who": {"name": 'Ann "A"'}, "items": [{"sku": "x"}], "note": None},
}


def test_a_valid_entry_becomes_an_envelope_powertools_accepts() -> None:
    entry = parse_entry(
        {"Source": "shop", "DetailType": "Order Placed", "Detail": '{"id": 7}', "Time": 1767225600.5,
         "EventBusName": "arn:aws:events:us-east-1:000000000000:event-bus/orders", "Resources": ["r"]}
    )  # fmt: skip
    assert isinstance(entry, Entry) and entry.bus == "orders"
    event = envelope(entry, "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "000000000000", "us-east-1", 0)
    assert event["time"] == "2026-01-01T00:00:00Z" and event["detail"] == {"id": 7}
    model = parse(event=event, model=EventBridgeModel)
    assert (model.detail_type, model.source, model.resources, model.detail) == (
        "Order Placed",
        "shop",
        ["r"],
        {"id": 7},
    )
    assert "replay-name" not in event
    assert envelope(entry, "x", "1", "r", 0, replay_name="again")["replay-name"] == "again"


@pytest.mark.parametrize(
    ("raw", "code", "text"),
    [
        ({"DetailType": "t", "Detail": "{}"}, "InvalidArgument", "Source is a required argument"),
        ({"Source": "s", "Detail": "{}"}, "InvalidArgument", "DetailType is a required argument"),
        ({"Source": "s", "DetailType": "t"}, "InvalidArgument", "Detail is a required argument"),
        ({"Source": "s", "DetailType": "t", "Detail": "{"}, "MalformedDetail", "Detail is malformed."),
        ({"Source": "s", "DetailType": "t", "Detail": "[1]"}, "MalformedDetail", "must be a JSON object"),
        ({"Source": "s", "DetailType": "t", "Detail": "{}", "Time": "yesterday"}, "InvalidArgument", "Time"),
        (
            {"Source": "s", "DetailType": "t", "Detail": json.dumps({"x": "y" * 262144})},
            "InvalidArgument",
            "262144",
        ),
    ],
)
def test_each_invalid_entry_gets_its_own_error(raw: dict[str, object], code: str, text: str) -> None:
    error = parse_entry(raw)
    assert isinstance(error, EntryError) and error.code == code and text in error.message


def test_bus_names_and_arns() -> None:
    assert bus_name(None) == bus_name("") == "default"
    assert bus_name("arn:aws:events:eu-west-1:123456789012:event-bus/b") == "b"


def test_paths_pick_values_and_missing_ones_are_null() -> None:
    assert resolve(EVENT, compile_path("$")) is EVENT
    assert resolve(EVENT, compile_path("$.detail.items[0].sku")) == "x"
    assert resolve(EVENT, compile_path("$['detail-type']")) == "Order Placed"
    assert resolve(EVENT, compile_path("$.detail-type")) == "Order Placed"
    assert resolve(EVENT, compile_path("$.detail.nope.deeper")) is None
    assert resolve(EVENT, compile_path("$.resources[5]")) is None
    for bad in ("detail", "$..x", "$.a[", "$[x]"):
        with pytest.raises(InputError):
            compile_path(bad)


def test_a_json_template_takes_values_as_json_outside_strings_and_as_text_inside() -> None:
    transformer = compile_transformer(
        {"id": "$.detail.id", "who": "$.detail.who", "name": "$.detail.who.name", "gone": "$.detail.nope"},
        '{"id": <id>, "who": <who>, "text": "<name> ordered <id>", "gone": <gone>,'
        ' "rule": "<aws.events.rule-name>", "all": <aws.events.event>}',
    )
    assert transformer.apply(EVENT, RULE) == {
        "id": 7,
        "who": {"name": 'Ann "A"'},
        "text": 'Ann "A" ordered 7',
        "gone": None,
        "rule": "f-orders",
        "all": EVENT,
    }


def test_a_text_template_yields_a_string() -> None:
    transformer = compile_transformer({"src": "$.source"}, '"<src> sent <aws.events.rule-arn>"')
    assert transformer.apply(EVENT, RULE) == f"shop sent {RULE.rule_arn}"
    assert compile_transformer({"src": "$.source"}, "from <src>").apply(EVENT, RULE) == "from shop"


@pytest.mark.parametrize(
    ("paths", "template", "message"),
    [
        ({}, '{"a": <nope>}', "input_template: <nope> is neither in input_paths_map nor a reserved name"),
        ({"a": "x"}, "<a>", "input_paths_map.a: 'x' is not a JSONPath"),
        ({"aws.events.x": "$"}, "<aws.events.x>", "is a reserved name"),
        ({"a": "$.a"}, '{"a": <a>,}', "input_template: not valid JSON once its placeholders are filled"),
    ],
)
def test_invalid_transformers_say_which_part(paths: dict[str, str], template: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        compile_transformer(paths, template)
    assert message in str(info.value)
