"""`pipelined events generate` and `invoke --event`: sample events a handler takes as the real thing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
    DynamoDBStreamModel,
    EventBridgeModel,
    KinesisDataStreamModel,
    S3Model,
    SqsModel,
)

from pipelined.cli import main
from pipelined.sources.samples import SAMPLES
from tests.support import write_config

MODELS: dict[str, Any] = {
    "sqs": SqsModel,
    "s3": S3Model,
    "dynamodb": DynamoDBStreamModel,
    "kinesis": KinesisDataStreamModel,
    "schedule": EventBridgeModel,
    "eventbridge": EventBridgeModel,
    "api": APIGatewayProxyEventModel,
    "http-api": APIGatewayProxyEventV2Model,
}
# What each type's handler (tests/handlers/sample_handlers.py) returns for the event given --body '{"n": 1}'.
EXPECTED: dict[str, Any] = {
    "sqs": {"bodies": ['{"n": 1}']},
    "s3": {"objects": ["uploads/in/a.txt"]},
    "dynamodb": {"new_images": [{"n": "1"}]},  # powertools reads N as a Decimal, printed as a string
    "kinesis": {"data": ['{"n": 1}']},
    "schedule": {"detail_type": "Scheduled Event", "source": "aws.events"},
    "eventbridge": {"detail_type": "Sample Event", "source": "sample.app", "detail": {"n": 1}},
    "api": {"method": "PUT", "path": "/orders/7", "body": '{"n": 1}'},
    "http-api": {"method": "PUT", "path": "/orders/7", "body": '{"n": 1}'},
}
OPTIONS = [
    "--body",
    '{"n": 1}',
    "--bucket",
    "uploads",
    "--key",
    "in/a.txt",
    "--method",
    "PUT",
    "--path",
    "/orders/7",
]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_sample_type_has_a_parser_model_test() -> None:
    assert set(SAMPLES) == set(MODELS) == set(EXPECTED)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_generated_event_parses_with_the_powertools_model_of_its_type(
    kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in ([], OPTIONS):
        code, out, err = _run(capsys, "events", "generate", kind, *argv)
        assert code == 0, err
        parse(json.loads(out), MODELS[kind])  # raises on any field the model rejects


def test_invoke_with_a_sample_event_is_accepted_by_the_handler_of_that_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    functions = {
        kind: {"handler": f"sample_handlers.{kind.replace('-', '_')}", "isolation": "inline"}
        for kind in MODELS
    }
    config = str(write_config(tmp_path, functions))
    for kind in sorted(MODELS):
        code, out, err = _run(capsys, "invoke", kind, "-c", config, "--event", kind, *OPTIONS)
        assert code == 0, f"{kind}: {out}{err}"
        assert json.loads(out) == EXPECTED[kind], kind
    # A handler of another type refuses the event: the samples are really of their type.
    code, out, _ = _run(capsys, "invoke", "sqs", "-c", config, "--event", "kinesis")
    assert code == 1 and "ValidationError" in out


def test_bad_sample_options_are_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "events", "generate", "dynamodb", "--body", "[1, 2]")
    assert code == 2 and "--body: a DynamoDB item needs a JSON object" in err
    code, _, err = _run(capsys, "events", "generate", "api", "--path", "orders")
    assert code == 2 and "--path: must start with '/'" in err
    code, _, err = _run(capsys, "events", "generate", "eventbridge", "--body", "[1]")
    assert code == 2 and "--body: Detail is malformed: it must be a JSON object." in err
    code, _, err = _run(capsys, "events", "generate", "carrier-pigeon")
    assert code == 2 and "invalid choice: 'carrier-pigeon'" in err
