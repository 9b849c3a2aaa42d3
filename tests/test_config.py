"""Tests for pipelined.config: loading, defaults, interpolation, paths and FILE:LINE problems."""

from __future__ import annotations

import math
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pipelined.config import (
    AwsConfig,
    Config,
    DestinationConfig,
    DynamoDBStreamSource,
    FunctionConfig,
    HttpConfig,
    KinesisSource,
    LoggingConfig,
    MqttConfig,
    MqttSource,
    S3Source,
    ScheduleSource,
    SqsSource,
    load_config,
    parse_duration,
)
from pipelined.errors import ConfigError

UNSET = "PIPELINED_TEST_SURELY_UNSET"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory with a function code dir (fn/app.py) and a layer holding a dotted package."""
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("raise SystemExit('handler modules must not be imported')\n")
    (tmp_path / "layer" / "pkg").mkdir(parents=True)
    (tmp_path / "layer" / "pkg" / "__init__.py").write_text("")
    (tmp_path / "layer" / "pkg" / "mod.py").write_text("def handle(event, context): ...\n")
    (tmp_path / "certs").mkdir()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / "certs" / name).write_text("x")
    return tmp_path


def write(directory: Path, text: str, name: str = "pipelined.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


FULL = """
state_dir: ./state
shutdown_timeout: 1m
http:
  listen: "[::1]:0"
aws:
  region: eu-west-1
  endpoint_url: ""
mqtt:
  url: mqtts://broker.local:8883
  ca_file: certs/ca.pem
  cert_file: certs/cert.pem
  key_file: certs/key.pem
logging:
  level: debug
  format: json
functions:
  hello:
    handler: app.handler
    code: fn
    layers: [layer]
    timeout: 30s
    environment: {NUMBER: 1, FLAG: true, RATIO: 0.5, TEXT: hi}
    on_failure: {destination: sqlite}
    events:
      - type: schedule
        expression: rate(5 minutes)
      - type: sqs
        queue: https://sqs.us-east-1.amazonaws.com/123456789012/jobs
        batch_size: 100
        maximum_batching_window: 2s
      - type: dynamodb_stream
        table: orders
        on_failure: {destination: "arn:aws:sqs:us-east-1:123456789012:dlq"}
      - type: kinesis
        stream: clicks
        starting_position: AT_TIMESTAMP
        starting_position_timestamp: 2024-05-01T12:00:00Z
      - type: s3
        bucket: uploads
        via: {sqs: uploads-events}
      - type: mqtt
        name: sensors
        topic: sensors/+/temp
  dotted:
    handler: pkg.mod.handle
    code: ./fn
    layers: [./layer]
    on_failure: {destination: "arn:aws:sns:us-east-1:123456789012:alerts"}
"""


def test_full_file_loads_with_defaults_and_resolved_paths(project: Path) -> None:
    config = load_config(write(project, FULL))
    assert config.source_path == project / "pipelined.yaml"
    assert config.state_dir == project / "state"
    assert config.shutdown_timeout == 60.0
    assert (config.http.host, config.http.port) == ("::1", 0)
    assert config.aws == AwsConfig(region="eu-west-1", endpoint_url=None)
    assert config.mqtt.ca_file == project / "certs" / "ca.pem"
    assert config.mqtt.key_file == project / "certs" / "key.pem"
    assert (config.mqtt.client_id, config.mqtt.keepalive) == ("pipelined", 60.0)
    assert config.logging == LoggingConfig(level="DEBUG", format="json")

    hello = config.functions["hello"]
    assert (hello.module_name, hello.attribute_name) == ("app", "handler")
    assert hello.code == project / "fn"
    assert hello.layers == [project / "layer"]
    assert (hello.timeout, hello.memory_mb, hello.reserved_concurrency) == (30.0, 128, None)
    assert hello.environment == {"NUMBER": "1", "FLAG": "true", "RATIO": "0.5", "TEXT": "hi"}
    assert hello.on_failure is not None and hello.on_failure.kind == "sqlite"
    assert [e.name for e in hello.events] == [
        "schedule-0",
        "sqs-1",
        "dynamodb_stream-2",
        "kinesis-3",
        "s3-4",
        "sensors",
    ]
    schedule, sqs, ddb, kinesis, s3, mqtt = hello.events
    assert isinstance(schedule, ScheduleSource)
    assert (schedule.timezone, schedule.catch_up, schedule.input) == ("UTC", "latest", None)
    assert (schedule.maximum_retry_attempts, schedule.maximum_event_age) == (2, 21600.0)
    assert isinstance(sqs, SqsSource)
    assert (sqs.batch_size, sqs.maximum_batching_window, sqs.maximum_concurrency) == (100, 2.0, 5)
    assert (sqs.visibility_timeout, sqs.retry_backoff.base, sqs.retry_backoff.max) == (None, 1.0, 300.0)
    assert isinstance(ddb, DynamoDBStreamSource)
    assert (ddb.starting_position, ddb.batch_size, ddb.maximum_retry_attempts) == ("TRIM_HORIZON", 100, -1)
    assert (ddb.maximum_record_age, ddb.parallelization_factor, ddb.stream_arn) == (-1.0, 1, None)
    assert ddb.on_failure is not None and ddb.on_failure.kind == "sqs"
    assert isinstance(kinesis, KinesisSource)
    assert kinesis.starting_position_timestamp == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert isinstance(s3, S3Source)
    assert (s3.events, s3.prefix, s3.via.sqs, s3.via.mqtt) == (
        ["s3:ObjectCreated:*"],
        "",
        "uploads-events",
        None,
    )
    assert isinstance(mqtt, MqttSource)
    assert (mqtt.qos, mqtt.maximum_retry_attempts, mqtt.enabled) == (1, 2, True)

    dotted = config.functions["dotted"]
    assert (dotted.module_name, dotted.attribute_name) == ("pkg.mod", "handle")
    assert dotted.on_failure is not None and dotted.on_failure.kind == "sns"
    assert config.summary() == (
        "2 functions, 6 event sources (1 schedule, 1 sqs, 1 dynamodb_stream, 1 kinesis, 1 s3, 1 mqtt)"
    )


def test_defaults_of_a_minimal_file(project: Path) -> None:
    config = load_config(write(project, "functions:\n  f: {handler: app.handler, code: fn}\n"))
    assert config.state_dir == project / ".pipelined"
    assert config.http == HttpConfig() and config.http.port == 9108
    assert config.mqtt == MqttConfig() and config.aws == AwsConfig() and config.logging == LoggingConfig()
    assert config.functions["f"].events == [] and config.functions["f"].layers == []
    assert config.summary() == "1 function, 0 event sources"


def test_env_interpolation(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PL_CODE", "fn")
    monkeypatch.setenv("PL_MEMORY", "256")
    monkeypatch.setenv("PL_EMPTY", "")
    monkeypatch.delenv(UNSET, raising=False)
    path = write(
        project,
        f"""
        aws:
          endpoint_url: ${{{UNSET}:-}}
          region: ${{{UNSET}:-eu-north-1}}
        functions:
          f:
            handler: app.handler
            code: ./${{PL_CODE}}
            memory_mb: ${{PL_MEMORY}}
            environment:
              EMPTY: "[${{PL_EMPTY}}]"
              DEFAULTED: ${{PL_EMPTY:-fallback}}
              LITERAL: $${{NOT_INTERPOLATED}}
        """,
    )
    config = load_config(path)
    function = config.functions["f"]
    assert config.aws == AwsConfig(region="eu-north-1", endpoint_url=None)
    assert function.code == project / "fn"
    assert function.memory_mb == 256
    assert function.environment == {"EMPTY": "[]", "DEFAULTED": "fallback", "LITERAL": "${NOT_INTERPOLATED}"}


def test_undefined_variable_is_reported_once_without_follow_on_errors(project: Path) -> None:
    path = write(
        project, f"functions:\n  f:\n    handler: app.handler\n    code: fn\n    memory_mb: ${{{UNSET}}}\n"
    )
    message = f"environment variable '{UNSET}' is not set (use ${{{UNSET}:-default}})"
    assert problems_of(path) == [f"{path}:5: functions.f.memory_mb: {message}"]


# Each case: YAML (the line marked "# <-" is where the problem must point), field path, message start.
PROBLEM_CASES = {
    "unknown key": (
        """
        functions:
          f:
            handler: app.handler
            code: fn
            memroy_mb: 256  # <-
        """,
        "functions.f.memroy_mb",
        "unknown key (did you mean 'memory_mb'?)",
    ),
    "wrong type": (
        """
        functions:
          f:
            handler: app.handler
            code: fn
            memory_mb: lots  # <-
        """,
        "functions.f.memory_mb",
        "expected an integer, got 'lots'",
    ),
    "out of range": (
        """
        functions:
          f:
            handler: app.handler
            code: fn
            events:
              - {type: sqs, queue: jobs, maximum_concurrency: 1}  # <-
        """,
        "functions.f.events[0].maximum_concurrency",
        "must be between 2 and 1000, got 1",
    ),
    "unknown function module": (
        """
        functions:
          f:
            handler: missing.handler  # <-
            code: fn
        """,
        "functions.f.handler",
        "module 'missing' not found in {project}/fn",
    ),
    "code dir does not exist": (
        """
        functions:
          f:
            handler: app.handler
            code: nowhere  # <-
        """,
        "functions.f.code",
        "{project}/nowhere does not exist",
    ),
    "bad duration": (
        """
        functions:
          f:
            handler: app.handler
            code: fn
            timeout: 5 minutes  # <-
        """,
        "functions.f.timeout",
        "invalid duration '5 minutes': expected seconds or a number with a unit",
    ),
    "duration out of range": (
        """
        functions:
          f:
            handler: app.handler
            code: fn
            timeout: 1h  # <-
        """,
        "functions.f.timeout",
        "must be between 1s and 15m, got 1h",
    ),
    "bad schedule expression": (
        """
        functions:
          f:
            handler: app.handler
            code: fn
            events:
              - type: schedule
                expression: rate(5 minute)  # <-
        """,
        "functions.f.events[0].expression",
        "invalid schedule expression 'rate(5 minute)': ",
    ),
    "undefined variable": (
        f"""
        functions:
          f:
            handler: app.handler
            code: fn
            environment:
              TOKEN: ${{{UNSET}}}  # <-
        """,
        "functions.f.environment.TOKEN",
        f"environment variable '{UNSET}' is not set",
    ),
    "unknown event type": (
        """
        functions:
          f:
            handler: app.handler
            code: fn
            events:
              - type: sns  # <-
        """,
        "functions.f.events[0].type",
        "unknown event source type 'sns'; expected one of: schedule, sqs, dynamodb_stream, kinesis, s3, mqtt",
    ),
    "missing required key": (
        """
        functions:
          f:  # <-
            handler: app.handler
        """,
        "functions.f.code",
        "required key is missing",
    ),
    "both table and stream_arn": (
        """
        functions:
          f:
            handler: app.handler
            code: fn
            events:
              - type: dynamodb_stream
                table: orders
                stream_arn: arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024  # <-
        """,
        "functions.f.events[0].stream_arn",
        "give either table or stream_arn, not both",
    ),
    "duplicate event names": (
        """
        functions:
          f:
            handler: app.handler
            code: fn
            events:
              - {type: schedule, expression: rate(1 minute), name: tick}
              - {type: schedule, expression: rate(2 minutes), name: tick}  # <-
        """,
        "functions.f.events[1].name",
        "duplicate event name 'tick' (also events[0])",
    ),
    "default name clashes with an explicit one": (
        """
        functions:
          f:
            handler: app.handler
            code: fn
            events:
              - {type: schedule, expression: rate(1 minute), name: schedule-1}
              - {type: schedule, expression: rate(2 minutes)}  # <-
        """,
        "functions.f.events[1].name",
        "duplicate event name 'schedule-1'",
    ),
    "batch_size above 10 without a window": (
        """
        functions:
          f:
            handler: app.handler
            code: fn
            events:
              - type: sqs
                queue: jobs
                batch_size: 50  # <-
        """,
        "functions.f.events[0].batch_size",
        "a batch_size above 10 requires maximum_batching_window of at least 1s (as in AWS Lambda)",
    ),
    "AT_TIMESTAMP without a timestamp": (
        """
        functions:
          f:
            handler: app.handler
            code: fn
            events:
              - {type: kinesis, stream: clicks, starting_position: AT_TIMESTAMP}  # <-
        """,
        "functions.f.events[0].starting_position_timestamp",
        "required when starting_position is AT_TIMESTAMP",
    ),
    "invalid function name": (
        """
        functions:
          bad name:  # <-
            handler: app.handler
            code: fn
        """,
        "functions.bad name",
        "must be 1-64 letters, digits, '_' or '-', got 'bad name'",
    ),
    "invalid environment variable name": (
        """
        functions:
          f:
            handler: app.handler
            code: fn
            environment:
              1BAD: x  # <-
        """,
        "functions.f.environment.1BAD",
        "must be a valid environment variable name",
    ),
    "duplicate YAML key": (
        """
        functions:
          f:
            handler: app.handler
            code: fn
            code: fn  # <-
        """,
        "functions.f.code",
        "duplicate key",
    ),
    "no functions": (
        """
        functions: {}  # <-
        """,
        "functions",
        "define at least one function",
    ),
}


@pytest.mark.parametrize(("text", "field", "message"), PROBLEM_CASES.values(), ids=PROBLEM_CASES.keys())
def test_each_problem_names_file_line_and_field(project: Path, text: str, field: str, message: str) -> None:
    path = write(project, text)
    lines = path.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "# <-" in text)
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:{line}: {field}: {message.format(project=project)}"), problem
    assert "\n" not in problem and "pydantic" not in problem and "type=" not in problem


def test_yaml_syntax_error(project: Path) -> None:
    path = write(project, "functions:\n  f:\n    handler: app.handler\n    code: [fn\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:5: invalid YAML: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "1: file is empty"),
        ("# only a comment\n", "1: file is empty"),
        ("- a\n- b\n", "1: top level must be a mapping"),
        (
            "functions:\n  f: !custom x\n",
            "2: invalid YAML: could not determine a constructor for the tag '!custom'",
        ),
    ],
)
def test_file_level_problems(project: Path, text: str, expected: str) -> None:
    path = write(project, text)
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:{expected}")


def test_unreadable_files(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "missing.yaml") == [f"{tmp_path / 'missing.yaml'}: file not found"]
    assert problems_of(tmp_path)[0].startswith(f"{tmp_path}: cannot read file")
    (tmp_path / "latin1.yaml").write_bytes(b"functions:\n  f: caf\xe9\n")
    assert problems_of(tmp_path / "latin1.yaml") == [f"{tmp_path / 'latin1.yaml'}:2: file is not valid UTF-8"]


def test_multiple_problems_are_all_reported_in_line_order(project: Path) -> None:
    path = write(
        project,
        f"""
        shutdown_timeout: -5s
        http: {{listen: nowhere}}
        logging: {{level: loud}}
        functions:
          f:
            handler: nomodule.handler
            code: fn
            memory_mb: 64
            environment: {{KEY: "${{{UNSET}}}"}}
            events:
              - {{type: schedule, expression: "rate(0 minutes)"}}
              - {{type: sqs, queue: jobs, batch_size: 11}}
              - {{type: mqtt, topic: "a/#/b"}}
              - {{type: kinesis, stream: s, maximum_record_age: 10s}}
              - {{type: s3, bucket: uploads, via: {{}}}}
          g:
            handler: app
        """,
    )
    problems = problems_of(path)
    fields = [p.split(": ")[1] for p in problems]
    assert fields == [
        "shutdown_timeout",
        "http.listen",
        "logging.level",
        "functions.f.handler",
        "functions.f.memory_mb",
        "functions.f.environment.KEY",
        "functions.f.events[0].expression",
        "functions.f.events[1].batch_size",
        "functions.f.events[2].topic",
        "functions.f.events[3].maximum_record_age",
        "functions.f.events[4].via",
        "functions.g.code",
        "functions.g.handler",
    ]
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == sorted(lines) and lines[0] == 1 and lines[-1] == 17
    assert problems[1].endswith("expected 'host:port' (IPv6 as '[::1]:port'), got 'nowhere'")
    assert problems[9].endswith("must be -1 (no limit) or between 1m and 7d, got 10s")


def test_merge_keys_and_extension_keys(project: Path) -> None:
    path = write(
        project,
        """
        x-common: &common {handler: app.handler, code: fn, timeout: 10s}
        functions:
          a: {<<: *common}
          b:
            <<: *common
            timeout: 20s
        """,
    )
    config = load_config(path)
    assert (config.functions["a"].timeout, config.functions["b"].timeout) == (10.0, 20.0)


def test_odd_yaml(project: Path) -> None:
    path = write(project, "functions:\n  f: {handler: app.handler, code: fn, on_failure: sqlite}\n")
    on_failure = load_config(path).functions["f"].on_failure
    assert on_failure == DestinationConfig(destination="sqlite")  # the string shorthand
    path = write(project, "source_path: /etc\nfunctions: &f\n  f: *f\n")
    assert [p.split(": ", 1)[1] for p in problems_of(path)] == [
        "source_path: unknown key (set from the file's location)",
        "functions.f: recursive YAML alias",
    ]


def test_handler_modules_are_found_without_being_imported(project: Path) -> None:
    (project / "ns" / "sub").mkdir(parents=True)
    (project / "ns" / "sub" / "mod.py").write_text("")
    text = "functions:\n  f: {handler: %s, code: fn, layers: [layer, .]}\n"
    assert load_config(write(project, text % "app.handler")).functions["f"].module_name == "app"
    assert load_config(write(project, text % "pkg.mod.handle")).functions["f"].module_name == "pkg.mod"
    assert load_config(write(project, text % "ns.sub.mod.f")).functions["f"].module_name == "ns.sub.mod"
    (problem,) = problems_of(write(project, text % "pkg.nope.handle"))
    assert problem.endswith(f"module 'pkg.nope' not found in {project}/fn, {project}/layer, {project}")
    (problem,) = problems_of(write(project, text % "ns.handler"))  # a namespace package is no module
    assert "module 'ns' not found" in problem


def test_models_built_in_code_leave_paths_alone() -> None:
    function = FunctionConfig(handler="app.handler", code=Path("relative/code"))
    assert function.code == Path("relative/code") and function.module_name == "app"
    config = Config(functions={"f": function})
    assert config.state_dir == Path(".pipelined") and config.source_path.is_absolute()
    with pytest.raises(ValidationError):
        FunctionConfig(handler="nodot", code=Path("x"))


def test_small_models() -> None:
    assert (HttpConfig(listen="0.0.0.0:80").host, HttpConfig(listen="0.0.0.0:80").port) == ("0.0.0.0", 80)
    for listen in ("nohost", ":80", "h:99999", "h:x", "::1:80"):
        with pytest.raises(ValidationError):
            HttpConfig(listen=listen)
    for url in ("mqtt://h", "mqtts://h:8883", "ws://h/mqtt", "wss://h"):
        assert MqttConfig(url=url).url == url
    for url in ("http://h", "mqtt://", "mqtt://h:notaport"):
        with pytest.raises(ValidationError):
            MqttConfig(url=url)
    assert LoggingConfig.model_validate({"level": "warning"}).level == "WARNING"
    assert AwsConfig.model_validate({"endpoint_url": ""}).endpoint_url is None
    kinds = {
        "sqlite": "sqlite",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/q": "sqs",
        "http://localhost:4566/000000000000/q.fifo": "sqs",
        "arn:aws:sqs:eu-west-1:123456789012:q": "sqs",
        "arn:aws:sns:eu-west-1:123456789012:t": "sns",
    }
    for destination, kind in kinds.items():
        assert DestinationConfig(destination=destination).kind == kind
    for bad in ("", "sqs", "arn:aws:lambda:eu-west-1:123456789012:function:f", "ftp://x/1/q"):
        with pytest.raises(ValidationError):
            DestinationConfig(destination=bad)


def test_models_are_frozen_and_strict() -> None:
    config = HttpConfig()
    with pytest.raises(ValidationError):
        config.listen = "0.0.0.0:1"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        HttpConfig.model_validate({"listen": "h:1", "extra": True})


# --- durations -------------------------------------------------------------------------------

FACTORS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(sorted(FACTORS)))
def test_duration_with_unit_round_trips(count: int, unit: str) -> None:
    expected = count / 1000 if unit == "ms" else float(count * FACTORS[unit])
    assert parse_duration(f"{count}{unit}") == expected
    assert parse_duration(f" {count} {unit} ") == expected


@given(st.integers(min_value=0, max_value=10**12), st.floats(min_value=0, max_value=1e12))
def test_plain_numbers_are_seconds(whole: int, seconds: float) -> None:
    assert parse_duration(whole) == parse_duration(str(whole)) == float(whole)
    assert parse_duration(seconds) == seconds
    assert parse_duration(f"{seconds:.3f}") == float(f"{seconds:.3f}")


@given(st.text(max_size=20))
def test_garbage_only_ever_raises_value_error(text: str) -> None:
    try:
        assert parse_duration(text) >= 0
    except ValueError as exc:
        assert str(exc)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("500ms", 0.5),
        ("30", 30.0),
        ("1.5h", 5400.0),
        ("1h30m", 5400.0),
        ("7d", 604800.0),
        (0, 0.0),
        ("0s", 0.0),
    ],
)
def test_duration_examples(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-5s", "must not be negative"),
        (-1, "must not be negative"),
        ("5 minutes", "expected seconds or a number with a unit"),
        ("", "expected seconds or a number with a unit"),
        ("5S", "expected seconds or a number with a unit"),
        (True, "expected a duration"),
        (None, "expected a duration"),
        ([5], "expected a duration"),
        (math.inf, "must be a finite number"),
        (math.nan, "must be a finite number"),
        (10**400, "must be a finite number"),
    ],
)
def test_bad_durations(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(value)
