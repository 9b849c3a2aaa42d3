"""Tests for the problems load_config reports: each one line naming file, line, field and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.config.support import UNSET, problems_of, write

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
