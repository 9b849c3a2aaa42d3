"""Helpers for the config tests: write a YAML file, collect the problems loading it reports."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pipelined.config import load_config
from pipelined.errors import ConfigError

# An environment variable no test run sets, for ${VAR} references that must fail.
UNSET = "PIPELINED_TEST_SURELY_UNSET"


def write(directory: Path, text: str, name: str = "pipelined.yaml") -> Path:
    """Write ``text`` (dedented) as the config file ``name`` in ``directory``."""
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def problems_of(path: Path) -> list[str]:
    """The problems load_config reports for ``path``; it must fail, its message the problems joined."""
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems
