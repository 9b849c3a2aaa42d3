"""Lambda's runtime identifiers, what `handler` means for each, and the checks `validate` makes of them.

Python runtimes run in the daemon's interpreter (inline or in worker processes); Node.js and the
`provided` family run as separate programs speaking the Lambda Runtime API (docs/runtimes.md).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Literal

PYTHON_RUNTIMES = ("python3.11", "python3.12", "python3.13")
NODE_RUNTIMES = ("nodejs18.x", "nodejs20.x", "nodejs22.x")
PROVIDED_RUNTIMES = ("provided", "provided.al2", "provided.al2023")
RuntimeName = Literal[
    "python3.11",
    "python3.12",
    "python3.13",
    "nodejs18.x",
    "nodejs20.x",
    "nodejs22.x",
    "provided",
    "provided.al2",
    "provided.al2023",
]
Family = Literal["python", "nodejs", "provided"]
# Oldest Node.js the shipped runtime client supports, whatever the function's runtime asks for.
MIN_NODE_MAJOR = 18
# Lambda's limit on the Handler setting; a `provided` handler is otherwise free text.
MAX_HANDLER = 128
# Node.js extensions Lambda tries for `file.export`, in its order (extensionless first).
NODE_EXTENSIONS = ("", ".js", ".mjs", ".cjs")


def family(runtime: str | None) -> Family:
    """Which kind of runtime `runtime` is (None: the daemon's Python)."""
    if runtime is None or runtime in PYTHON_RUNTIMES:
        return "python"
    return "nodejs" if runtime in NODE_RUNTIMES else "provided"


def node_major(runtime: str) -> int:
    """The Node.js major version a `nodejsNN.x` runtime names."""
    return int(runtime.removeprefix("nodejs").removesuffix(".x"))


def node_handler_problem(handler: str) -> str | None:
    """Why `handler` is not a Node.js handler (`file.export`, maybe under a directory), or None."""
    if ".." in handler:
        return f"must not contain '..', got {handler!r}"
    module, _, export = handler.rpartition("/")[2].partition(".")
    if not module or not export or len(handler) > MAX_HANDLER or any(c.isspace() for c in handler):
        return f"must be 'file.export' (e.g. 'index.handler'), got {handler!r}"
    return None


def node_module_problem(handler: str, code: Path) -> str | None:
    """Why the module of a Node.js handler is not in `code` (Lambda's own lookup), or None."""
    directory, _, name = handler.rpartition("/")
    base = code / directory / name.partition(".")[0]
    if any(Path(f"{base}{ext}").is_file() for ext in NODE_EXTENSIONS):
        return None
    tried = ", ".join(f"{base.name}{ext}" for ext in NODE_EXTENSIONS[1:])
    return f"module {base.name!r} not found in {base.parent} (tried {tried})"


def provided_handler_problem(handler: str) -> str | None:
    """Why `handler` cannot be a `provided` function's _HANDLER (free text, as on Lambda), or None."""
    if not handler or len(handler) > MAX_HANDLER or any(c.isspace() for c in handler):
        return f"must be 1-{MAX_HANDLER} characters without spaces, got {handler!r}"
    return None


def find_bootstrap(code: Path, layers: list[Path]) -> Path | None:
    """The executable Lambda runs for `provided`: code/bootstrap, else a layer's (later layers win)."""
    for directory in [code, *reversed(layers)]:
        candidate = directory / "bootstrap"
        if candidate.is_file():
            return candidate
    return None


def bootstrap_problem(code: Path, layers: list[Path]) -> str | None:
    """Why a `provided` function has no runnable bootstrap, or None."""
    found = find_bootstrap(code, layers)
    if found is None:
        where = ", ".join(str(d / "bootstrap") for d in [code, *layers])
        return f"no bootstrap executable: tried {where}"
    if not os.access(found, os.X_OK):
        return f"{found} is not executable (chmod +x it)"
    return None


def find_node(node: str) -> str | None:
    """The absolute path of the `node` setting (a path, or a name looked up on PATH)."""
    found = shutil.which(node)
    return str(Path(found).resolve()) if found else None


@functools.lru_cache(maxsize=8)
def node_version(path: str) -> tuple[int, int, int] | None:
    """`node --version` of the executable at `path` (None if it does not answer like Node.js)."""
    try:
        output = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)\S*\s*", output)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def node_problem(node: str, runtime: str) -> str | None:
    """Why the `node` setting cannot run a `runtime` function (missing, not Node.js, too old), or None."""
    path = find_node(node)
    if path is None:
        return f"{runtime} needs Node.js: {node!r} not found (install Node.js or set `node:` to its path)"
    version = node_version(path)
    if version is None:
        return f"{runtime} needs Node.js: {path} --version did not print a Node.js version"
    wanted = max(MIN_NODE_MAJOR, node_major(runtime))
    if version[0] < wanted:
        found = ".".join(map(str, version))
        return f"{runtime} needs Node.js {wanted} or newer, {path} is v{found}"
    return None
