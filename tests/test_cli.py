"""The command line as a user runs it: output, exit codes, and no tracebacks for user errors."""

from __future__ import annotations

import json
from pathlib import Path

from pipelined import __version__
from pipelined.state import Checkpoint, StateStore
from pipelined.state.markers import MQTT_SUBSCRIPTION, STREAM_RESET
from tests.support import run_cli, write_config


def config_with(tmp_path: Path, handler: str) -> Path:
    return write_config(tmp_path, {"fn": {"handler": handler, "environment": {"GREETING": "salut"}}})


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"pipelined {__version__}"


def test_validate_good_file_prints_a_one_line_summary(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "fn": {
                "handler": "handlers.record",
                "events": [
                    {"type": "schedule", "expression": "cron(0 12 ? * MON-FRI *)"},
                    {"type": "sqs", "queue": "orders"},
                ],
            }
        },
    )
    result = run_cli("validate", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{config}: OK: 1 function, 2 event sources (1 schedule, 1 sqs)"]


def test_validate_bad_file_names_file_line_and_field_for_each_problem(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    config = tmp_path / "bad.yaml"
    config.write_text(
        "functions:\n"
        "  fn:\n"
        f"    code: {code}\n"
        "    handler: missing.handler\n"
        "    timeout: soon\n"
        "    colour: blue\n"
        "    events:\n"
        "      - type: schedule\n"
        "        expression: rate(5 minute)\n"
        "      - type: sqs\n"
        "        queue: ${QUEUE_NAME_THAT_IS_NOT_SET}\n"
    )
    result = run_cli("validate", str(config))
    assert result.returncode == 2
    assert result.stdout == ""
    problems = result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    expected = {
        4: "functions.fn.handler",
        5: "functions.fn.timeout",
        6: "functions.fn.colour",
        9: "functions.fn.events[0].expression",
        11: "QUEUE_NAME_THAT_IS_NOT_SET",
    }
    for line, needle in expected.items():
        assert any(p.startswith(f"{config}:{line}: ") and needle in p for p in problems), (line, problems)


def test_validate_missing_file(tmp_path: Path) -> None:
    result = run_cli("validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "nope.yaml" in result.stderr and "Traceback" not in result.stderr


def test_invoke_prints_the_handler_result_as_json(tmp_path: Path) -> None:
    config = config_with(tmp_path, "batch_handlers.environment")
    result = run_cli("invoke", "fn", "-c", str(config), "--payload", '{"a": 1}')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "GREETING": "salut",
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "_HANDLER": "batch_handlers.environment",
        "AWS_REGION": "us-east-1",
    }
    assert "REPORT RequestId" in result.stderr


def test_invoke_handler_error_prints_lambda_error_object_and_exits_1(tmp_path: Path) -> None:
    config = config_with(tmp_path, "handlers.fail")
    payload = tmp_path / "event.json"
    payload.write_text('{"x": 1}')
    result = run_cli(
        "invoke",
        "fn",
        "-c",
        str(config),
        "--payload-file",
        str(payload),
        env={"RECORD_FILE": str(tmp_path / "r")},
    )
    assert result.returncode == 1
    error = json.loads(result.stdout)
    assert error["errorType"] == "ValueError"
    assert error["errorMessage"] == "boom: this handler always fails"
    assert any("handlers.py" in frame and "in fail" in frame for frame in error["stackTrace"])
    assert not any("pipelined" in frame for frame in error["stackTrace"])
    assert list(error) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert f"START RequestId: {error['requestId']} " in result.stderr
    assert (
        "[ERROR] ValueError: boom: this handler always fails\nTraceback (most recent call last):"
        in result.stderr
    )


def test_invoke_user_errors_are_one_line(tmp_path: Path) -> None:
    config = config_with(tmp_path, "handlers.record")
    cases = [
        (["invoke", "fn", "-c", str(config), "--payload", "{not json"], "--payload: not valid JSON"),
        (["invoke", "other", "-c", str(config)], "no function 'other'"),
        (
            ["invoke", "fn", "-c", str(config), "--payload-file", str(tmp_path / "none.json")],
            "--payload-file",
        ),
        (["invoke", "fn"], "pass -c FILE or set PIPELINED_CONFIG"),
        (["frobnicate"], "invalid choice"),
        (["dlq", "show", "7", "-c", str(config)], "no parked event with id 7"),
    ]
    for args, message in cases:
        result = run_cli(*args, env={"PIPELINED_CONFIG": ""})
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)


def test_config_from_environment_variable(tmp_path: Path) -> None:
    config = config_with(tmp_path, "batch_handlers.environment")
    result = run_cli("invoke", "fn", env={"PIPELINED_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr


async def test_checkpoints_list_shows_markers_among_checkpoints_as_rows(tmp_path: Path) -> None:
    config = config_with(tmp_path, "handlers.record")
    state = await StateStore.open(tmp_path / "state")
    await state.checkpoints.save([Checkpoint("fn/k", "arn:aws:kinesis:s", "shard-1", "100")])
    await state.markers.put("fn/k", STREAM_RESET, STREAM_RESET, "LATEST")
    await state.markers.put("fn/m", MQTT_SUBSCRIPTION, "client-1", "sensors/#")
    await state.close()
    result = run_cli("checkpoints", "list", "-c", str(config))
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t")[:4] for line in result.stdout.splitlines()[:-1]]
    assert rows == [
        ["fn/k", "*", "*", "LATEST"],
        ["fn/k", "arn:aws:kinesis:s", "shard-1", "100"],
        ["fn/m", "mqtt-subscription", "client-1", "sensors/#"],
    ]
    assert result.stdout.splitlines()[-1] == "3 checkpoint(s)"


def test_invoke_refuses_a_payload_over_lambdas_6_mb_limit(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"fn": {"handler": "handlers.record"}})
    payload = tmp_path / "big.json"
    payload.write_text(json.dumps({"data": "x" * (6 * 1024 * 1024)}))
    result = run_cli("invoke", "fn", "-c", str(config), "--payload-file", str(payload))
    assert result.returncode == 2 and result.stdout == ""
    assert "Lambda accepts at most 6,291,456 bytes (6 MB) for a synchronous invocation" in result.stderr


def test_a_corrupt_state_file_is_one_line_naming_it_not_a_traceback(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"fn": {"handler": "handlers.record"}})
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "state.db").write_bytes(b"not a database, " * 256)
    for command in (["checkpoints", "list"], ["dlq", "list"]):
        result = run_cli(*command, "-c", str(config))
        assert result.returncode == 2
        assert (
            result.stderr.startswith("pipelined: ") and str(tmp_path / "state" / "state.db") in result.stderr
        )
        assert "Traceback" not in result.stderr


def test_an_inline_handler_that_exits_at_import_fails_its_load_with_a_message(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "exits.py").write_text("import sys\nsys.exit(3)\n")
    (code / "hard_exit.py").write_text("import os\nos._exit(4)\n")
    (code / "interrupted.py").write_text("raise KeyboardInterrupt\n")
    for module, shown in (
        ("exits", "SystemExit: 3"),
        ("hard_exit", "os._exit(4) called while importing the handler module"),
        ("interrupted", "KeyboardInterrupt"),
    ):
        fn = {"handler": f"{module}.handler", "code": str(code), "isolation": "inline"}
        config = write_config(tmp_path, {"fn": fn})
        result = run_cli("invoke", "fn", "-c", str(config))
        assert result.returncode == 2, result.stderr
        assert f"function fn: cannot import '{module}'" in result.stderr and shown in result.stderr
