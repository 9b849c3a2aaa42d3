"""Hot reload (`pipelined dev`, `pipelined run --watch`): a saved handler is live within a second.

The watcher follows each function's `code` and `layers` directories (recursively) and the config file
(its directory, not recursively: editors save by renaming a new file over the old one). A changed config
reloads as SIGHUP does. Changed code is checked first (every changed .py file must compile, so a syntax
error is one line with its file and line and nothing is touched), then each function whose directories
hold a changed file is refreshed (`Function.refresh`): inline handlers are imported anew, worker pools
start fresh workers and retire the old ones after their invocations. A function whose new code fails to
initialise keeps serving its previous code; the error is logged once, with its location.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from watchfiles import Change, DefaultFilter, awatch

from pipelined.config import Config
from pipelined.core.lambda_errors import LambdaError

log = logging.getLogger("pipelined.watch")

# A burst of writes (an editor's temporary file, rename, chmod) ends after this much quiet...
WATCH_STEP_MS = 50
# ...and is never grouped for longer than this.
WATCH_DEBOUNCE_MS = 400
# A Python traceback's `File "PATH", line N` and a Node.js frame's `(file://)PATH:LINE:COLUMN`.
_FRAME = re.compile(
    r'File "(?P<file>[^"]+)", line (?P<line>\d+)|(?:file://)?(?P<js>/[^\s:()]+):(?P<js_line>\d+):\d+'
)

RefreshCode = Callable[[Collection[str], frozenset[Path]], Awaitable[Mapping[str, LambdaError | None]]]


@dataclass(frozen=True, slots=True)
class WatchSet:
    """What one configuration asks the watcher to follow."""

    # Code and layer directories, watched recursively.
    roots: tuple[Path, ...]
    config: Path
    # Never a reason to reload (the state directory may sit inside a code directory).
    ignore: tuple[Path, ...]


def watch_set(config: Config) -> WatchSet:
    """The directories and the config file that `config` names."""
    roots = {Path(p).resolve() for fn in config.functions.values() for p in (fn.code, *fn.layers)}
    # A directory inside another is already watched through it.
    outer = tuple(sorted(r for r in roots if not any(o != r and r.is_relative_to(o) for o in roots)))
    return WatchSet(outer, config.source_path.resolve(), (config.state_dir.resolve(),))


def function_roots(config: Config, name: str) -> tuple[Path, ...]:
    """The directories a function's code comes from."""
    fn = config.functions[name]
    return tuple(Path(p).resolve() for p in (fn.code, *fn.layers))


def functions_of(config: Config, path: Path) -> list[str]:
    """The functions whose code or layer directories hold `path`."""
    return [
        name for name in config.functions if any(path.is_relative_to(r) for r in function_roots(config, name))
    ]


def syntax_error(path: Path) -> str | None:
    """`FILE:LINE: SyntaxError: message` when a Python file does not compile, else None."""
    if path.suffix != ".py" or not path.is_file():
        return None
    try:
        compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        return f"{exc.filename or path}:{exc.lineno or 0}: {type(exc).__name__}: {exc.msg}"
    except (OSError, ValueError) as exc:
        return f"{path}: {exc}"
    return None


def error_location(error: LambdaError, roots: Collection[Path]) -> str | None:
    """`FILE:LINE` of the innermost stack frame in the function's own code, if there is one."""
    found: str | None = None
    for entry in error.stack_trace or ():
        for match in _FRAME.finditer(entry):
            file = Path(match["file"] or match["js"])
            if any(file.is_relative_to(r) for r in roots):
                found = f"{file}:{match['line'] or match['js_line']}"
    return found


def changed_paths(batch: Iterable[tuple[Change, str]]) -> set[Path]:
    """The paths of one batch, without the temporary files an editor created and removed within it."""
    added = {p for change, p in batch if change == Change.added}
    deleted = {p for change, p in batch if change == Change.deleted}
    return {Path(p).resolve() for _, p in batch if not (p in added and p in deleted and not Path(p).exists())}


class Watcher:
    """Watches the running config's files; reloads the config or refreshes functions when they change."""

    def __init__(
        self,
        config: Callable[[], Config],
        reload_config: Callable[[], Awaitable[object]],
        refresh_code: RefreshCode,
    ) -> None:
        self._config = config
        self._reload_config = reload_config
        self._refresh_code = refresh_code
        # Files that do not compile, and functions whose new code failed to initialise, with the problem
        # logged for each: the same problem is logged once.
        self._broken: dict[Path, str] = {}
        self._failed: dict[str, str] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until `stop` is set; the watched directories follow the config across reloads."""
        while not stop.is_set():
            current = watch_set(self._config())
            changes: asyncio.Queue[set[Path]] = asyncio.Queue()
            done = asyncio.Event()
            feeders = [asyncio.create_task(self._feed(current.roots, True, current, done, changes))]
            if not any(current.config.parent.is_relative_to(r) for r in current.roots):
                feeders.append(
                    asyncio.create_task(self._feed((current.config.parent,), False, current, done, changes))
                )
            log.debug("watching %s and %s", ", ".join(map(str, current.roots)), current.config)
            try:
                while watch_set(self._config()) == current:
                    waiting = asyncio.create_task(changes.get())
                    stopping = asyncio.create_task(stop.wait())
                    await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    stopping.cancel()
                    if not waiting.done():
                        waiting.cancel()
                        return
                    try:
                        await self.handle(waiting.result())
                    except Exception:
                        # A bug here must not end hot reload for the rest of the session.
                        log.exception("hot reload failed")
            finally:
                done.set()  # the watching threads notice within one step
                await asyncio.gather(*feeders, return_exceptions=True)

    async def _feed(
        self,
        roots: tuple[Path, ...],
        recursive: bool,
        current: WatchSet,
        done: asyncio.Event,
        changes: asyncio.Queue[set[Path]],
    ) -> None:
        existing = [r for r in roots if r.exists()]
        if not existing:
            return
        only = None if recursive else current.config
        watch_filter = DefaultFilter(ignore_paths=current.ignore)
        try:
            async for batch in awatch(
                *existing,
                watch_filter=watch_filter,
                debounce=WATCH_DEBOUNCE_MS,
                step=WATCH_STEP_MS,
                stop_event=done,
                recursive=recursive,
            ):
                paths = changed_paths(batch)
                if only is not None:
                    paths &= {only}
                if paths:
                    changes.put_nowait(paths)
        except Exception as exc:  # inotify's watch limit, a watched directory removed, ...
            log.error(
                "cannot watch %s for changes (hot reload is off for it): %s",
                ", ".join(map(str, existing)),
                exc,
            )

    async def handle(self, paths: set[Path]) -> None:
        """React to one batch of changed files: reload the config, refresh the functions they belong to."""
        config = self._config()
        current = watch_set(config)
        if current.config in paths:
            await self._reload_config()
            config = self._config()
        code = sorted(p for p in paths if p != current.config and functions_of(config, p))
        if not code:
            return
        # A file broken by an earlier save still blocks its functions when another file is saved.
        for path in sorted({*code, *self._broken}):
            problem = syntax_error(path)
            if problem is None:
                self._broken.pop(path, None)
                continue
            if self._broken.get(path) != problem:
                log.error(
                    "%s (%s: still serving the previous code)", problem, ", ".join(functions_of(config, path))
                )
            self._broken[path] = problem
        broken = {n for p in self._broken for n in functions_of(config, p)}
        names = sorted({n for p in code for n in functions_of(config, p)} - broken)
        if not names:
            return
        results = await self._refresh_code(names, frozenset(code))
        reloaded = sorted(name for name, error in results.items() if error is None)
        if reloaded:
            log.info("reloaded %s (%s changed)", ", ".join(reloaded), ", ".join(p.name for p in code))
        for name, error in sorted(results.items()):
            if error is None:
                self._failed.pop(name, None)
                continue
            where = error_location(error, function_roots(config, name)) or str(code[0])
            problem = f"{where}: {error.error_type}: {error.error_message}"
            if self._failed.get(name) != problem:
                log.error("%s (%s: still serving the previous code)", problem, name)
            self._failed[name] = problem
