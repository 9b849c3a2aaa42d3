"""Tests for `runtime:`: what `handler` means per runtime; what `validate` checks of node and bootstraps."""

from __future__ import annotations

from pathlib import Path

from pipelined.config import load_config
from tests.config.support import problems_of, write
from tests.support import run_cli


def node_function(project: Path, handler: str = "index.handler", **extra: str) -> Path:
    options = "".join(f", {key}: {value}" for key, value in extra.items())
    text = f"functions:\n  f: {{runtime: nodejs20.x, handler: {handler}, code: fn{options}}}\n"
    return write(project, text)


def test_node_handlers_are_files_with_lambdas_extensions(project: Path) -> None:
    (project / "fn" / "index.mjs").write_text("export const handler = async () => 1;\n")
    (project / "fn" / "src").mkdir()
    (project / "fn" / "src" / "app.cjs").write_text("exports.h = async () => 1;\n")
    function = load_config(node_function(project)).functions["f"]
    # Node.js functions always run as workers, whatever the top-level isolation says.
    assert (function.isolation, function.node) == ("process", "node")
    assert load_config(node_function(project, "src/app.h")).functions["f"].handler == "src/app.h"
    (problem,) = problems_of(node_function(project, "missing.handler"))
    assert problem.endswith(
        f"module 'missing' not found in {project}/fn (tried missing.js, missing.mjs, missing.cjs)"
    )
    (problem,) = problems_of(node_function(project, "nodot"))
    assert problem.endswith("handler: must be 'file.export' (e.g. 'index.handler'), got 'nodot'")
    (problem,) = problems_of(node_function(project, "../up.handler"))
    assert "must not contain '..'" in problem


def test_node_must_exist_and_be_new_enough(project: Path) -> None:
    (project / "fn" / "index.js").write_text("exports.handler = async () => 1;\n")
    (problem,) = problems_of(node_function(project, node=str(project / "no-node")))
    assert problem.endswith(
        f"node: nodejs20.x needs Node.js: '{project}/no-node' not found "
        "(install Node.js or set `node:` to its path)"
    )
    old = project / "old-node"
    old.write_text("#!/bin/sh\necho v16.20.2\n")
    old.chmod(0o755)
    (problem,) = problems_of(node_function(project, node=str(old)))
    assert problem.endswith(f"node: nodejs20.x needs Node.js 20 or newer, {old} is v16.20.2")
    # The top-level `node` is every function's default; the problem is then the runtime's.
    text = f"node: {old}\nfunctions:\n  f: {{runtime: nodejs22.x, handler: index.handler, code: fn}}\n"
    (problem,) = problems_of(write(project, text))
    assert "runtime: nodejs22.x needs Node.js 22 or newer" in problem
    done = run_cli("validate", str(write(project, text)))
    assert done.returncode == 2 and "needs Node.js 22 or newer" in done.stderr


def test_provided_needs_an_executable_bootstrap_in_the_code_or_a_layer(project: Path) -> None:
    text = "functions:\n  f: {runtime: provided.al2023, handler: anything goes, code: fn, layers: [layer]}\n"
    (problem,) = problems_of(write(project, text))
    assert "handler: must be 1-128 characters without spaces" in problem
    text = text.replace("anything goes", "function.handler")
    (problem,) = problems_of(write(project, text))
    assert problem.endswith(
        f"no bootstrap executable: tried {project}/fn/bootstrap, {project}/layer/bootstrap"
    )
    bootstrap = project / "layer" / "bootstrap"
    bootstrap.write_text("#!/bin/sh\n")
    (problem,) = problems_of(write(project, text))
    assert problem.endswith(f"{bootstrap} is not executable (chmod +x it)")
    bootstrap.chmod(0o755)
    assert load_config(write(project, text)).functions["f"].isolation == "process"


def test_runtime_api_functions_refuse_inline_isolation_and_allow_provisioned_workers(project: Path) -> None:
    (project / "fn" / "index.js").write_text("exports.handler = async () => 1;\n")
    (problem,) = problems_of(node_function(project, isolation="inline"))
    assert problem.endswith(
        "isolation: a nodejs20.x function always runs in worker processes "
        "(remove `isolation` or set it to process)"
    )
    config = load_config(node_function(project, provisioned_concurrency="2"))
    assert config.functions["f"].provisioned_concurrency == 2
    text = "functions:\n  f: {runtime: python3.12, handler: app.handler, code: fn}\n"
    assert load_config(write(project, text)).functions["f"].isolation == "process"  # the default
