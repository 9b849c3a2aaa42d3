"""Tests for FunctionConfig: handler modules found without importing them, models built in code."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pipelined.config import Config, FunctionConfig, load_config
from tests.config.support import problems_of, write


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


def test_role_is_an_iam_role_arn_and_needs_process_isolation(project: Path) -> None:
    text = "functions:\n  f: {handler: app.handler, code: fn, isolation: %s, role: %s}\n"
    role = "arn:aws:iam::123456789012:role/service-role/app"
    assert load_config(write(project, text % ("process", role))).functions["f"].role == role
    path = write(project, text % ("process", "app-role"))
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:2: functions.f.role: must be a role ARN")
    (problem,) = problems_of(write(project, text % ("inline", role)))
    assert f"{path}:2: functions.f.role: needs isolation: process" in problem


def test_account_id_is_twelve_digits(project: Path) -> None:
    text = "aws: {account_id: %s}\nfunctions:\n  f: {handler: app.handler, code: fn}\n"
    assert load_config(write(project, text % "'000000000042'")).aws.account_id == "000000000042"
    assert load_config(write(project, text % "123456789012")).aws.account_id == "123456789012"
    path = write(project, text % "12345")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:1: aws.account_id: must be an account id of 12 digits")
