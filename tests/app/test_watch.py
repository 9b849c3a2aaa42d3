"""Hot reload's decisions: what is watched, which functions a saved file touches, how problems read."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Collection
from pathlib import Path

import pytest
from watchfiles import Change

from pipelined.app.assembly import build_function
from pipelined.app.watch import (
    Watcher,
    changed_paths,
    error_location,
    functions_of,
    syntax_error,
    watch_set,
)
from pipelined.config import load_config
from pipelined.core.lambda_errors import LambdaError
from pipelined.functions.function import forget_bytecode
from tests.support import invoke, write_config


def _dirs(tmp_path: Path, *names: str) -> list[Path]:
    for name in names:
        (tmp_path / name).mkdir(parents=True)
    return [(tmp_path / name).resolve() for name in names]


def test_a_saved_file_belongs_to_every_function_whose_code_or_layers_hold_it(tmp_path: Path) -> None:
    shared, other, layer = _dirs(tmp_path, "shared", "other", "shared/layer")
    for path in (shared / "a.py", shared / "b.py", other / "c.py"):
        path.write_text("def handler(event, context):\n    return None\n")
    functions = {
        "a": {"code": str(shared), "handler": "a.handler"},
        "b": {"code": str(shared), "handler": "b.handler"},
        "c": {"code": str(other), "handler": "c.handler", "layers": [str(layer)]},
    }
    config = load_config(write_config(tmp_path, functions))
    watched = watch_set(config)
    # The layer inside `shared` is watched through it; the state directory is never a reason to reload.
    assert watched.roots == (other, shared)
    assert watched.config == (tmp_path / "pipelined.yaml").resolve()
    assert watched.ignore == ((tmp_path / "state").resolve(),)
    assert functions_of(config, shared / "a.py") == ["a", "b"]
    assert functions_of(config, layer / "lib.py") == ["a", "b", "c"]
    assert functions_of(config, other / "c.py") == ["c"]
    assert functions_of(config, tmp_path / "notes.txt") == []


def test_a_syntax_error_reads_file_line_type_and_message(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("x = 1\ndef handler(event:\n")
    assert syntax_error(broken) == f"{broken}:2: SyntaxError: '(' was never closed"
    fine = tmp_path / "fine.py"
    fine.write_text("x = 1\n")
    assert syntax_error(fine) is None
    assert syntax_error(tmp_path / "index.js") is None  # only Python is compiled here
    assert syntax_error(tmp_path / "deleted.py") is None


def test_stale_bytecode_of_a_saved_file_is_deleted(tmp_path: Path) -> None:
    source = tmp_path / "handler.py"
    source.write_text("x = 1\n")
    cached = Path(importlib.util.cache_from_source(str(source)))
    cached.parent.mkdir()
    cached.write_bytes(b"stale")
    forget_bytecode([source, tmp_path / "index.js"])
    assert not cached.exists() and source.exists()


def test_an_editors_temporary_file_made_and_removed_within_one_save_is_left_out(tmp_path: Path) -> None:
    handler = tmp_path / "handler.py"
    handler.write_text("x = 1\n")
    temp, gone = str(tmp_path / ".handler.py.tmp"), str(tmp_path / "removed.py")
    batch = {
        (Change.added, temp),
        (Change.deleted, temp),
        (Change.modified, str(handler)),
        (Change.deleted, gone),
    }
    assert changed_paths(batch) == {handler.resolve(), Path(gone).resolve()}


def test_the_location_of_an_init_error_is_the_innermost_frame_in_the_functions_code(tmp_path: Path) -> None:
    code = tmp_path / "code"
    trace = (
        '  File "<frozen importlib._bootstrap>", line 488, in _call_with_frames_removed\n',
        f'  File "{code}/handler.py", line 3, in <module>\n    import settings\n',
        f'  File "{code}/settings.py", line 9, in <module>\n    TABLE = os.environ["TABLE"]\n',
        '  File "/usr/lib/python3.11/os.py", line 679, in __getitem__\n',
    )
    error = LambdaError("KeyError", "'TABLE'", trace)
    assert error_location(error, [code]) == f"{code}/settings.py:9"
    assert error_location(LambdaError("Runtime.ImportModuleError", "No module named 'x'", ()), [code]) is None
    node = LambdaError(
        "Error", "no", ("Error: no", f"    at Object.<anonymous> (file://{code}/index.js:2:7)")
    )
    assert error_location(node, [code]) == f"{code}/index.js:2"


async def test_a_file_left_broken_blocks_its_functions_when_another_file_is_saved(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (code,) = _dirs(tmp_path, "code")
    handler, helper = code / "watch_blocked.py", code / "watch_blocked_helper.py"
    handler.write_text(
        "from watch_blocked_helper import VALUE\n\ndef handler(event, context):\n    return VALUE\n"
    )
    helper.write_text("VALUE = 1\n")
    config = load_config(
        write_config(tmp_path, {"fn": {"code": str(code), "handler": "watch_blocked.handler"}})
    )
    function = build_function("fn", config)
    function.load()
    # A warm worker holds the code as it was; a new one would import what is on disk now.
    await function.start()
    refreshed: list[Collection[str]] = []

    async def refresh(names: Collection[str], changed: frozenset[Path]) -> dict[str, LambdaError | None]:
        refreshed.append(names)
        return {"fn": await function.refresh(changed)}

    async def reload() -> None:
        raise AssertionError("the config did not change")

    watcher = Watcher(lambda: config, reload, refresh)
    with caplog.at_level(logging.INFO, logger="pipelined.watch"):
        helper.write_text("VALUE = (\n")
        await watcher.handle({helper})
        handler.write_text(handler.read_text() + "\n# touched\n")
        await watcher.handle({handler})  # the helper is still broken: nothing is imported
        await watcher.handle({helper})  # saved again, still broken: not logged again
        assert refreshed == []
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors == [
            f"{helper}:1: SyntaxError: '(' was never closed (fn: still serving the previous code)"
        ]
        assert (await invoke(function, {})).value == 1
        helper.write_text("VALUE = 2\n")
        await watcher.handle({helper})
    try:
        assert refreshed == [["fn"]]
        assert (await invoke(function, {})).value == 2
    finally:
        await function.close(0)
    assert "reloaded fn (watch_blocked_helper.py changed)" in caplog.text
