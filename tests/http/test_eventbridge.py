"""boto3's `events` client against the daemon: PutEvents routes events to rules, which invoke functions."""

from __future__ import annotations

import datetime
import json
import signal
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.sources.sqs.support import sqs_client
from tests.support import DaemonProcess, free_port, read_records, run_cli, wait_until, write_config

# One pattern using every operator family; each event below says which of its conditions it breaks.
EVERY_OPERATOR = {
    "source": [{"wildcard": "app.*.orders"}],
    "detail": {
        "kind": [{"equals-ignore-case": "PAID"}],
        "file": [{"suffix": ".pdf"}],
        "amount": [{"numeric": [">", 0, "<=", 500]}],
        "client": [{"cidr": "10.0.0.0/8"}, {"cidr": "2001:db8::/32"}],
        "status": [{"anything-but": {"wildcard": "*-test"}}],
        "region": [{"anything-but": ["moon"]}],
        "tags": ["vip"],
        "coupon": [{"exists": False}],
        "shipping": {"method": [{"prefix": "air"}]},
    },
    "$or": [{"detail": {"priority": [1]}}, {"resources": [{"exists": True}]}],
}
MATCHING_DETAIL = {
    "kind": "paid",
    "file": "invoice.pdf",
    "amount": 250,
    "client": "10.1.2.3",
    "status": "ok",
    "region": "eu",
    "tags": ["new", "vip"],
    "shipping": {"method": "air-express"},
    "priority": 1,
}
FAST = {"maximum_retry_attempts": 2, "backoff_base": "100ms", "backoff_max": "200ms"}
FUNCTIONS: dict[str, Any] = {
    "orders": {
        "handler": "eventbridge_handlers.record",
        "events": [
            {
                "type": "eventbridge",
                "name": "big",
                "bus": "shop",
                "description": "large orders",
                "pattern": {"source": ["shop"], "detail": {"amount": [{"numeric": [">=", 100]}]}},
            },
            {
                "type": "eventbridge",
                "name": "summary",
                "bus": "shop",
                "pattern": {"detail-type": [{"prefix": "Order"}]},
                "input_transformer": {
                    "input_paths_map": {"id": "$.detail.id", "src": "$.source", "first": "$.resources[0]"},
                    "input_template": '{"order": <id>, "text": "order <id> from <src>", '
                    '"resource": <first>, "rule": "<aws.events.rule-name>"}',
                },
            },
        ],
    },
    "everything": {
        "handler": "eventbridge_handlers.record",
        "events": [{"type": "eventbridge", "name": "all-ops", "pattern": EVERY_OPERATOR}],
    },
    "flaky": {
        "handler": "eventbridge_handlers.fail",
        "events": [
            {"type": "eventbridge", "name": "fails", "pattern": {"source": ["fail"]}, "retry_policy": FAST}
        ],
    },
}


def events_client(daemon: DaemonProcess, access_key: str = "testing", secret: str = "testing") -> Any:
    """boto3's EventBridge client pointed at the daemon's API listener, no retries."""
    return boto3.client(
        "events",
        endpoint_url=f"http://127.0.0.1:{daemon.api_port}",
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30),
    )


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonProcess, Path]]:
    """One daemon for the module, with the buses `default` and `shop`."""
    directory = tmp_path_factory.mktemp("eventbridge")
    records = directory / "records.jsonl"
    config = write_config(
        directory,
        FUNCTIONS,
        event_buses={"shop": {"description": "the shop", "archive": {"retention": "1d"}}},
    )
    process = DaemonProcess(config, {"RECORD_FILE": str(records)}).start()
    yield process, records
    process.stop()


def entry(source: str, detail: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"Source": source, "DetailType": "Order Placed", "Detail": json.dumps(detail), **extra}


def received(records: Path, function: str, predicate: Callable[[dict[str, Any]], bool]) -> list[Any]:
    return [r for r in read_records(records) if r["function"] == function and predicate(r["event"])]


def test_matching_rules_on_two_buses_receive_the_envelope_powertools_parses(
    bus: tuple[DaemonProcess, Path],
) -> None:
    process, records = bus
    client = events_client(process)
    answer = client.put_events(
        Entries=[
            entry("shop", {"id": 7, "amount": 120}, EventBusName="shop", Resources=["arn:aws:s3:::b"]),
            entry("shop", {"id": 8, "amount": 5}, EventBusName="arn:aws:events:us-east-1:0:event-bus/shop"),
            entry("shop", {"id": 9, "amount": 500}),  # the default bus: no rule there matches it
        ]
    )
    assert answer["FailedEntryCount"] == 0
    first_id = answer["Entries"][0]["EventId"]
    big = wait_until(lambda: received(records, "orders", lambda e: e.get("id") == first_id), message="big")
    event = big[0]["event"]
    assert list(event) == [
        "version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"
    ]  # fmt: skip
    assert (event["version"], event["detail-type"], event["source"]) == ("0", "Order Placed", "shop")
    assert (event["region"], event["resources"], event["detail"]) == ("us-east-1", ["arn:aws:s3:::b"], {
        "id": 7, "amount": 120
    })  # fmt: skip
    assert event["time"].endswith("Z") and len(event["time"]) == 20
    assert big[0]["model"] == {"id": first_id, "detail_type": "Order Placed", "source": "shop"}
    assert big[0]["data_class"]["detail"] == {"id": 7, "amount": 120}
    # Both shop events match the transformer rule; only the first is big; the default bus has no taker.
    summaries = wait_until(
        lambda: (found := received(records, "orders", lambda e: "order" in e)) and len(found) >= 2 and found
    )
    assert sorted(s["event"]["order"] for s in summaries) == [7, 8]
    seven = next(s["event"] for s in summaries if s["event"]["order"] == 7)
    assert seven == {
        "order": 7,
        "text": "order 7 from shop",
        "resource": "arn:aws:s3:::b",
        "rule": "orders-summary",
    }
    assert received(records, "orders", lambda e: e.get("detail", {}).get("id") in (8, 9)) == []
    assert received(records, "everything", lambda e: True) == []


def test_a_pattern_with_every_operator_family_matches_only_the_event_meeting_all_of_it(
    bus: tuple[DaemonProcess, Path],
) -> None:
    process, records = bus
    broken = {
        "wildcard": ("app.web.invoices", {}),
        "equals-ignore-case": ("app.web.orders", {"kind": "unpaid"}),
        "suffix": ("app.web.orders", {"file": "invoice.doc"}),
        "numeric": ("app.web.orders", {"amount": 501}),
        "cidr": ("app.web.orders", {"client": "192.168.0.1"}),
        "anything-but wildcard": ("app.web.orders", {"status": "load-test"}),
        "anything-but": ("app.web.orders", {"region": "moon"}),
        "exact in array": ("app.web.orders", {"tags": ["new"]}),
        "exists false": ("app.web.orders", {"coupon": "X"}),
        "nested prefix": ("app.web.orders", {"shipping": {"method": "sea"}}),
        "$or": ("app.web.orders", {"priority": 2}),
    }
    entries = [
        entry(source, {**MATCHING_DETAIL, **change, "case": case})
        for case, (source, change) in broken.items()
    ]
    entries.append(entry("app.mobile.orders", {**MATCHING_DETAIL, "case": "all"}))
    entries.append(entry("app.x.orders", {**MATCHING_DETAIL, "client": "2001:db8::1", "priority": 0,
                                          "case": "ipv6 and $or by resources"}, Resources=["r"]))  # fmt: skip
    client = events_client(process)
    for start in range(0, len(entries), 10):
        assert client.put_events(Entries=entries[start : start + 10])["FailedEntryCount"] == 0
    expected = {"all", "ipv6 and $or by resources"}
    wait_until(
        lambda: {r["event"]["detail"]["case"] for r in received(records, "everything", bool)} >= expected
    )
    # The other events were never queued: PutEvents answered after routing them all.
    assert {r["event"]["detail"]["case"] for r in received(records, "everything", bool)} == expected
    assert client.test_event_pattern(
        EventPattern=json.dumps(EVERY_OPERATOR),
        Event=json.dumps({"source": "app.a.orders", "detail": MATCHING_DETAIL, "id": "1", "account": "1"}),
    )["Result"]


def test_invalid_entries_fail_alone_and_an_unknown_bus_fails_the_call(
    bus: tuple[DaemonProcess, Path],
) -> None:
    process, records = bus
    client = events_client(process)
    answer = client.put_events(
        Entries=[
            entry("shop", {"id": 21, "amount": 300}, EventBusName="shop"),
            {"Source": "shop", "DetailType": "Order Placed", "Detail": "{not json", "EventBusName": "shop"},
            {"Source": "shop", "Detail": "{}", "EventBusName": "shop"},
        ]
    )
    assert answer["FailedEntryCount"] == 2
    assert "EventId" in answer["Entries"][0]
    assert answer["Entries"][1] == {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    assert answer["Entries"][2]["ErrorCode"] == "InvalidArgument"
    assert "DetailType" in answer["Entries"][2]["ErrorMessage"]
    wait_until(lambda: received(records, "orders", lambda e: e.get("detail", {}).get("id") == 21))
    assert process.metric("pipelined_eventbridge_entries_total", bus="shop", result="failed") == 2
    assert process.metric("pipelined_eventbridge_matched_events_total", bus="shop", rule="orders-big") >= 1
    with pytest.raises(client.exceptions.ResourceNotFoundException) as missing:
        client.put_events(Entries=[entry("shop", {}, EventBusName="nope")])
    assert missing.value.response["Error"]["Message"] == "Event bus nope does not exist."
    with pytest.raises(client.exceptions.InvalidEventPatternException):
        client.test_event_pattern(EventPattern='{"source": "x"}', Event="{}")


def test_failing_handler_is_retried_then_dead_lettered_with_its_rule(bus: tuple[DaemonProcess, Path]) -> None:
    process, records = bus
    client = events_client(process)
    event_id = client.put_events(Entries=[entry("fail", {"n": 4})])["Entries"][0]["EventId"]

    def parked() -> Any:
        listed = run_cli("dlq", "list", "-c", str(process.config))
        return listed.stdout if "flaky/eventbridge:flaky-fails" in listed.stdout else None

    listing = wait_until(parked, timeout=20, message="dead-lettered event")
    assert "RetriesExhausted\tattempts=3\tcannot handle 4" in listing
    attempts = received(records, "flaky", lambda e: e.get("id") == event_id)
    assert len(attempts) == 3  # the first try and maximum_retry_attempts (2) retries
    dead_id = next(line.split("\t")[0] for line in listing.splitlines() if "flaky-fails" in line)
    shown = json.loads(run_cli("dlq", "show", dead_id.strip(), "-c", str(process.config)).stdout)
    assert shown["event"]["id"] == event_id
    assert shown["failureRecord"]["rule"] == {
        "name": "flaky-fails",
        "arn": "arn:aws:events:us-east-1:000000000000:rule/flaky-fails",
    }
    assert shown["failureRecord"]["responsePayload"]["errorMessage"] == "cannot handle 4"


def test_buses_and_rules_are_read_back_from_the_yaml(bus: tuple[DaemonProcess, Path]) -> None:
    client = events_client(bus[0])
    names = [b["Name"] for b in client.list_event_buses()["EventBuses"]]
    assert names == ["default", "shop"]
    shop = client.describe_event_bus(Name="shop")
    assert shop["Arn"] == "arn:aws:events:us-east-1:000000000000:event-bus/shop"
    assert shop["Description"] == "the shop"
    rules = client.list_rules(EventBusName="shop")["Rules"]
    assert [r["Name"] for r in rules] == ["orders-big", "orders-summary"]
    big = client.describe_rule(Name="orders-big", EventBusName="shop")
    assert big["State"] == "ENABLED" and big["Description"] == "large orders"
    assert json.loads(big["EventPattern"]) == FUNCTIONS["orders"]["events"][0]["pattern"]
    assert big["Arn"] == "arn:aws:events:us-east-1:000000000000:rule/shop/orders-big"
    targets = client.list_targets_by_rule(Rule="orders-summary", EventBusName="shop")["Targets"]
    assert targets[0]["Arn"].endswith(":function:orders") and "InputTransformer" in targets[0]
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_rule(Name="orders-big")  # it is on the shop bus, not the default one
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.describe_event_bus(Name="nope")
    with pytest.raises(ClientError) as refused:
        client.put_rule(Name="new", EventPattern='{"source": ["x"]}')
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "pipelined does not support PutRule" in refused.value.response["Error"]["Message"]
    assert str(bus[0].config) in refused.value.response["Error"]["Message"]


def test_archived_events_are_replayed_by_time_and_rule_with_their_replay_name(
    bus: tuple[DaemonProcess, Path],
) -> None:
    process, records = bus
    client = events_client(process)
    at = [datetime.datetime(2020, 1, 1, 0, 0, s, tzinfo=datetime.UTC) for s in (0, 1, 5)]
    answer = client.put_events(
        Entries=[
            entry("shop", {"id": 100 + i, "amount": 150}, EventBusName="shop", Time=when)
            for i, when in enumerate(at)
        ]
    )
    ids = [e["EventId"] for e in answer["Entries"]]
    wait_until(lambda: len(received(records, "orders", lambda e: e.get("id") in ids)) == 3)
    replay = run_cli(
        "events", "replay", "shop", "--from", "2020-01-01T00:00:00Z", "--to", "2020-01-01T00:00:02Z",
        "--rule", "orders-big", "--name", "again", "-c", str(process.config),
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    arn = "arn:aws:events:us-east-1:000000000000:replay/again"
    assert replay.stdout == f"{arn}: 2 archived event(s) replayed as 2 invocation(s)\n"
    replayed = wait_until(
        lambda: (
            (found := received(records, "orders", lambda e: e.get("replay-name") == "again"))
            and len(found) == 2
            and found
        )
    )
    assert sorted(r["event"]["id"] for r in replayed) == sorted(ids[:2])
    assert all(r["event"]["time"].startswith("2020-01-01T00:00:0") for r in replayed)
    archives = client.list_archives()["Archives"]
    assert [(a["ArchiveName"], a["RetentionDays"]) for a in archives] == [("shop", 1)]
    assert archives[0]["EventCount"] >= 3
    refused = run_cli("events", "replay", "shop", "--from", "2020-01-01", "--to", "now", "--rule", "nope",
                      "-c", str(process.config))  # fmt: skip
    assert refused.returncode == 2
    assert (
        refused.stderr
        == "pipelined: --rule: no rule 'nope' on bus 'shop' (its rules: orders-big, orders-summary)\n"
    )
    refused = run_cli(
        "events", "replay", "default", "--from", "2020-01-01", "--to", "now", "-c", str(process.config)
    )
    assert "event bus 'default' has no archive" in refused.stderr


def test_accepted_events_survive_kill_9_and_are_all_delivered_after_restart(
    daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    records, gate = tmp_path / "records.jsonl", tmp_path / "gate"
    functions = {
        "gated": {
            "handler": "eventbridge_handlers.gated",
            "reserved_concurrency": 2,
            "events": [{"type": "eventbridge", "pattern": {"source": ["load"]}}],
        }
    }
    config = write_config(tmp_path, functions)
    env = {"RECORD_FILE": records, "GATE_FILE": gate}
    first = daemon(config, env)
    client = events_client(first)
    accepted: set[str] = set()
    for call in range(10):
        answer = client.put_events(Entries=[entry("load", {"n": call * 10 + i}) for i in range(10)])
        assert answer["FailedEntryCount"] == 0
        accepted |= {e["EventId"] for e in answer["Entries"]}
    assert first.process is not None
    first.process.kill()
    first.wait()
    assert len(accepted) == 100 and read_records(records) == []
    gate.touch()
    second = daemon(config, env)
    wait_until(lambda: {r["id"] for r in read_records(records)} == accepted, timeout=60, message="all 100")
    wait_until(lambda: second.metric("pipelined_async_queue_depth", function="gated") == 0, message="drained")


def test_a_rules_sqs_dead_letter_receives_the_event_with_the_rule_and_error_as_attributes(
    aws: str, daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    sqs = sqs_client(aws)
    queue = sqs.create_queue(QueueName="rule-dlq")["QueueUrl"]
    records = tmp_path / "records.jsonl"
    rule = {
        "type": "eventbridge",
        "name": "once",
        "bus": "jobs",
        "pattern": {"detail": {"n": [{"numeric": [">", 0]}]}},
        "retry_policy": {"maximum_retry_attempts": 0},
        "dead_letter": queue,
    }
    functions = {"broken": {"handler": "eventbridge_handlers.fail", "events": [rule]}}
    config = write_config(tmp_path, functions, aws={"endpoint_url": aws}, event_buses={"jobs": {}})
    process = daemon(config, {"RECORD_FILE": records})
    answer = events_client(process).put_events(Entries=[entry("jobs", {"n": 5}, EventBusName="jobs")])
    messages = wait_until(
        lambda: sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1, MessageAttributeNames=["All"]).get(
            "Messages"
        ),
        message="dead-lettered event",
    )
    body = json.loads(messages[0]["Body"])
    assert body["id"] == answer["Entries"][0]["EventId"] and body["detail"] == {"n": 5}
    attributes = {k: v["StringValue"] for k, v in messages[0]["MessageAttributes"].items()}
    assert attributes == {
        # The endpoint's own account (moto's), as in every ARN the daemon makes.
        "RULE_ARN": "arn:aws:events:us-east-1:123456789012:rule/jobs/broken-once",
        "TARGET_ARN": "arn:aws:lambda:us-east-1:123456789012:function:broken",
        "ERROR_CODE": "RuntimeError",
        "ERROR_MESSAGE": "cannot handle 5",
        "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
        "RETRY_ATTEMPTS": "0",
    }
    assert len(read_records(records)) == 1  # maximum_retry_attempts: 0 is one attempt


def test_with_credentials_put_events_must_be_signed_by_one_of_them(
    daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    records = tmp_path / "records.jsonl"
    functions = {
        "orders": {
            "handler": "eventbridge_handlers.record",
            "events": [{"type": "eventbridge", "pattern": {"source": ["signed"]}}],
        }
    }
    credentials = [{"name": "app", "access_key_id": "AKIDAPP", "secret_access_key": "s3cret"}]
    config = write_config(
        tmp_path, functions, api={"listen": f"127.0.0.1:{free_port()}", "credentials": credentials}
    )
    process = daemon(config, {"RECORD_FILE": records})
    signed = events_client(process, "AKIDAPP", "s3cret")
    assert signed.put_events(Entries=[entry("signed", {"n": 1})])["FailedEntryCount"] == 0
    wait_until(lambda: received(records, "orders", lambda e: e["detail"] == {"n": 1}))
    with pytest.raises(ClientError) as refused:
        events_client(process, "AKIDAPP", "wrong").put_events(Entries=[entry("signed", {"n": 2})])
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_reload_changes_the_rules_and_an_old_event_ages_out_to_the_dead_letter(
    daemon: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    records = tmp_path / "records.jsonl"
    rule = {
        "type": "eventbridge",
        "name": "r",
        "pattern": {"source": ["first"]},
        "retry_policy": {"maximum_event_age": "1h", "backoff_base": "1h", "backoff_max": "1h"},
    }
    config = write_config(tmp_path, {"f": {"handler": "eventbridge_handlers.fail", "events": [rule]}})
    process = daemon(config, {"RECORD_FILE": records})
    client = events_client(process)
    client.put_events(Entries=[entry("first", {"n": 1})])
    wait_until(lambda: len(read_records(records)) == 1, message="first attempt")
    text = config.read_text().replace("- first", "- second")
    config.write_text(text)
    process.send_signal(signal.SIGHUP)
    wait_until(lambda: "reloaded:" in process.logs(), message="reload")
    assert client.describe_rule(Name="f-r")["EventPattern"] == '{"source": ["second"]}'
    client.put_events(Entries=[entry("first", {"n": 2}), entry("second", {"n": 3})])
    wait_until(lambda: len(read_records(records)) == 2, message="the new rule's event")
    assert [r["event"]["detail"]["n"] for r in read_records(records)] == [1, 3]
    process.stop()
    # The first event's retry is an hour away; the clock is moved past its age limit instead.
    with sqlite3.connect(tmp_path / "state" / "state.db") as db:
        db.execute("UPDATE async_events SET received_at = received_at - 7200, next_attempt_at = 0")
    daemon(config, {"RECORD_FILE": records})
    shown = wait_until(lambda: json.loads(run_cli("dlq", "show", "1", "-c", str(config)).stdout or "null"))
    assert shown["condition"] == "EventAgeExceeded" and shown["source"] == "eventbridge:f-r"
    assert shown["event"]["detail"]["n"] == 1
    listing = wait_until(
        lambda: (
            (out := run_cli("dlq", "list", "-c", str(config)).stdout).count("EventAgeExceeded") == 2 and out
        )
    )
    assert "2 parked event(s)" in listing
    assert len(read_records(records)) == 2  # nothing ran again
