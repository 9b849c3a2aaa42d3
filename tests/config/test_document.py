"""Tests for the YAML document: ${VAR} interpolation, merge and extension keys, odd YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelined.config import AwsConfig, DestinationConfig, load_config
from tests.config.support import UNSET, problems_of, write


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


def test_an_unterminated_variable_reference_is_an_error_not_text(project: Path) -> None:
    path = write(
        project,
        """
        functions:
          f:
            handler: app.handler
            code: ./fn
            environment:
              BROKEN: "${FOO"
              ESCAPED: "$${STILL_LITERAL"
        """,
    )
    assert problems_of(path) == [
        f"{path}:6: functions.f.environment.BROKEN: unterminated variable reference '${{FOO' (missing '}}')"
    ]
