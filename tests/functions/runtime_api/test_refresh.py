"""Hot reload of a Runtime API (Node.js) function: fresh programs on the saved code replace the old ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipelined.app.watch import error_location
from pipelined.functions.function import Function
from tests.support import invoke

HANDLER = "exports.handler = async () => ({version: '%s'});\n"


async def test_refresh_serves_the_saved_code_and_a_broken_save_keeps_the_old(
    tmp_path: Path, function: Callable[..., Function]
) -> None:
    handler = tmp_path / "index.js"
    handler.write_text(HANDLER % "v1")
    fn = function("index.handler", tmp_path)
    await fn.start()
    assert (await invoke(fn, {})).value == {"version": "v1"}
    handler.write_text(HANDLER % "v2")
    assert await fn.refresh({handler}) is None
    result = await invoke(fn, {})
    assert result.value == {"version": "v2"}
    assert result.init_duration_ms is not None  # reported once, as by a new version's first invocation
    handler.write_text("exports.handler = async () => ({version: 'v3'};\n")
    error = await fn.refresh({handler})
    assert error is not None and "SyntaxError" in f"{error.error_type} {error.error_message}", error
    assert (await invoke(fn, {})).value == {"version": "v2"}
    # A Node.js frame names the file and line of the throw: the watcher's log line shows it.
    handler.write_text("const x = 1;\nthrow new Error('no config');\n")
    error = await fn.refresh({handler})
    assert error is not None and error_location(error, [tmp_path]) == f"{handler}:2"
    assert (await invoke(fn, {})).value == {"version": "v2"}
