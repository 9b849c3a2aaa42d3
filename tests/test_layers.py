"""The package's shape stays as docs/architecture.md draws it: layers import only downward, no cycles."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pipelined

# Bottom to top. A module may import from a lower layer, or from its own top-level package
# (pipelined.X.*); never from a higher layer or from another package of its own layer.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("pipelined", "pipelined.errors"),
    ("pipelined.core",),
    ("pipelined.config", "pipelined.observe"),
    ("pipelined.state", "pipelined.aws"),
    ("pipelined.functions",),
    ("pipelined.invoke",),
    ("pipelined.sources",),
    ("pipelined.dispatch",),
    ("pipelined.http",),
    ("pipelined.app",),
    ("pipelined.devmode",),
    ("pipelined.cli",),
    ("pipelined.__main__",),
)
MAX_LINES = 420
ROOT = Path(pipelined.__file__).parent


def _modules() -> dict[str, Path]:
    found = {"pipelined": ROOT / "__init__.py"}
    for info in pkgutil.walk_packages([str(ROOT)], prefix="pipelined."):
        path = ROOT.joinpath(*info.name.split(".")[1:])
        found[info.name] = path / "__init__.py" if info.ispkg else path.with_suffix(".py")
    return found


def _package(module: str) -> str:
    """The layer entry a module belongs to: the longest prefix listed in LAYERS."""
    names = [n for layer in LAYERS for n in layer]
    matches = [n for n in names if module == n or module.startswith(n + ".")]
    assert matches, f"{module} is in no layer: add it to LAYERS in {__file__}"
    return max(matches, key=len)


def _rank(module: str) -> int:
    package = _package(module)
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def _imports(module: str, path: Path) -> set[str]:
    """Every pipelined module `module` imports, at any depth of its code (lazy and TYPE_CHECKING too).

    `from package import submodule` imports the submodule, not the package's re-exports.
    """
    modules = _modules()
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pipelined"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipelined"):
            submodules = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
            found.update(submodules or {node.module})
    return found


def test_every_module_imports_on_its_own() -> None:
    for name in _modules():
        if name != "pipelined.__main__":  # it runs the command line
            importlib.import_module(name)


def test_modules_import_only_downward() -> None:
    wrong: list[str] = []
    for module, path in _modules().items():
        for imported in _imports(module, path):
            same_package = _package(imported) == _package(module)
            if not same_package and _rank(imported) >= _rank(module):
                wrong.append(f"{module} imports {imported} (layer {_rank(imported)} >= {_rank(module)})")
    assert wrong == []


def test_there_are_no_import_cycles() -> None:
    modules = _modules()
    graph = {m: {i for i in _imports(m, p) if i in modules and i != m} for m, p in modules.items()}
    # A package's __init__ may re-export its submodules; a submodule importing its own package's
    # __init__ back would be the cycle, and is caught like any other.
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_no_module_is_much_over_400_lines() -> None:
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
