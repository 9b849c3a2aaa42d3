"""The isolation keys of the configuration file: defaults, the top-level default, readable errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipelined.config import load_config
from pipelined.errors import ConfigError
from tests.support import TEST_FUNCTIONS


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipelined.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n").replace("CODE", str(TEST_FUNCTIONS)))
    return path


def test_process_is_the_default_and_the_top_level_key_sets_it_for_every_function(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
            isolation: inline
            functions:
              a: {handler: handlers.record, code: CODE}
              b: {handler: handlers.record, code: CODE, isolation: process}
            """,
        )
    )
    a, b = config.functions["a"], config.functions["b"]
    assert (a.isolation, b.isolation) == ("inline", "process")
    assert b.provisioned_concurrency == 0 and b.idle_timeout == 300
    plain = load_config(write(tmp_path, "functions: {a: {handler: handlers.record, code: CODE}}"))
    assert plain.isolation == "process" and plain.functions["a"].isolation == "process"


def test_process_keys_are_validated_with_file_line_messages(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        isolation: processes
        functions:
          a:
            handler: handlers.record
            code: CODE
            idle_timeout: 2d
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [
        f"{path}:1: isolation: must be one of 'inline' or 'process', got 'processes'",
        f"{path}:6: functions.a.idle_timeout: must be between 0 and 1d, got 2d",
    ]


def test_provisioned_concurrency_must_fit_in_reserved_concurrency(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        functions:
          a:
            handler: handlers.record
            code: CODE
            isolation: process
            reserved_concurrency: 1
            provisioned_concurrency: 2
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [
        f"{path}:7: functions.a.provisioned_concurrency: must not exceed reserved_concurrency (1)"
    ]


def test_provisioned_concurrency_needs_process_isolation(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        functions:
          a:
            handler: handlers.record
            code: CODE
            isolation: inline
            provisioned_concurrency: 1
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [
        f"{path}:6: functions.a.provisioned_concurrency: needs isolation: process "
        "(an inline function has no workers to start ahead)"
    ]
