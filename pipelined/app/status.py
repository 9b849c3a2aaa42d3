"""`/status` and `pipelined status`: functions, their sources and health, lag, in-flight and queue depths.

The daemon builds the snapshot from what it already keeps — its runners, the state store and the metric
registry — so the figures are the ones Prometheus scrapes; `render_status` prints it for a terminal.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from prometheus_client import CollectorRegistry

from pipelined import __version__
from pipelined.app.reload import RunnerKey, RunnerSpec
from pipelined.config import Config
from pipelined.config.types import local_url
from pipelined.dispatch.runner import SourceRunner
from pipelined.errors import PipelinedError
from pipelined.functions.function import Function
from pipelined.state import StateStore


@dataclass(frozen=True, slots=True)
class DaemonView:
    """What the status snapshot reads: the daemon's live parts, passed in rather than the daemon itself."""

    started_at: float
    ready: bool
    functions: Mapping[str, Function]
    runners: Mapping[RunnerKey, SourceRunner]
    specs: Mapping[RunnerKey, RunnerSpec]
    state: StateStore | None
    registry: CollectorRegistry


async def dead_letter_counts(state: StateStore | None) -> dict[str, int] | None:
    """Parked events per function, or None when the state store cannot be read right now."""
    if state is None or not state.healthy:
        return None
    try:
        return await state.dead_letters.counts()
    except Exception:  # SQLite's or PostgreSQL's: a failing store must not fail a scrape or /status
        return None


def _sample(registry: CollectorRegistry, name: str, labels: Mapping[str, str]) -> float | None:
    return registry.get_sample_value(name, dict(labels))


async def snapshot(view: DaemonView) -> dict[str, Any]:
    """The `/status` document."""
    parked = await dead_letter_counts(view.state)
    registry = view.registry
    functions = []
    for name, function in sorted(view.functions.items()):
        sources = []
        for key, runner in sorted(view.runners.items()):
            if key[0] != name:
                continue
            spec = view.specs.get(key)
            labels = {"function": name, "source": key[1]}
            sources.append(
                {
                    "name": key[1],
                    "type": spec.source.type if spec is not None else None,
                    "healthy": runner.healthy,
                    "iterator_age_seconds": _sample(registry, "pipelined_iterator_age_seconds", labels),
                    "invocations": _sample(registry, "pipelined_invocations_total", labels) or 0.0,
                    "errors": _sample(registry, "pipelined_errors_total", labels) or 0.0,
                }
            )
        config = function.config
        functions.append(
            {
                "name": name,
                "runtime": config.runtime or "python",
                "isolation": config.isolation,
                "reserved_concurrency": config.reserved_concurrency,
                "in_flight": function.in_flight,
                "workers": _sample(registry, "pipelined_workers", {"function": name}),
                "async_queue_depth": _sample(registry, "pipelined_async_queue_depth", {"function": name})
                or 0.0,
                "dead_letters": None if parked is None else parked.get(name, 0),
                "sources": sources,
            }
        )
    state = view.state
    return {
        "version": __version__,
        "ready": view.ready,
        "uptime_seconds": round(time.time() - view.started_at, 3),
        "state": {
            "path": str(state.path) if state is not None else None,
            "healthy": state is not None and state.healthy,
        },
        "functions": functions,
    }


def fetch_status(config: Config, timeout: float = 5.0) -> dict[str, Any]:
    """GET /status from the daemon of `config` (its ops listener); PipelinedError if none answers."""
    url = local_url(config.http.host, config.http.port) + "/status"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            document: dict[str, Any] = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PipelinedError(f"no daemon answers on {url} ({exc}); is `pipelined run` running?") from exc
    return document


def _figure(value: float | None, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.0f}{suffix}" if value == int(value) else f"{value:.1f}{suffix}"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]


def render_status(document: Mapping[str, Any]) -> str:
    """The snapshot as two aligned tables: functions, then sources."""
    state = document["state"]
    lines = [
        f"pipelined {document['version']}: {'ready' if document['ready'] else 'NOT READY'}, "
        f"up {_figure(document['uptime_seconds'], ' s')}, state {state['path']} "
        f"({'ok' if state['healthy'] else 'FAILING'})",
        "",
    ]
    functions = document["functions"]
    rows = [["FUNCTION", "RUNTIME", "ISOLATION", "IN-FLIGHT", "WORKERS", "ASYNC QUEUE", "DLQ"]]
    for f in functions:
        rows.append(
            [
                f["name"],
                f["runtime"],
                str(f["isolation"]),
                str(f["in_flight"]),
                _figure(f["workers"]),
                _figure(f["async_queue_depth"]),
                "-" if f["dead_letters"] is None else str(f["dead_letters"]),
            ]
        )
    lines += _table(rows)
    sources = [["SOURCE", "TYPE", "HEALTH", "ITERATOR AGE", "INVOCATIONS", "ERRORS"]]
    for f in functions:
        for s in f["sources"]:
            sources.append(
                [
                    f"{f['name']}/{s['name']}",
                    str(s["type"]),
                    "up" if s["healthy"] else "DOWN",
                    _figure(s["iterator_age_seconds"], " s"),
                    _figure(s["invocations"]),
                    _figure(s["errors"]),
                ]
            )
    if len(sources) > 1:
        lines += ["", *_table(sources)]
    return "\n".join(lines) + "\n"


def status_command(config: Config, fmt: str, out: TextIO) -> int:
    """`pipelined status -c FILE`: the running daemon's snapshot, as tables or JSON; exit 0."""
    document = fetch_status(config)
    out.write(render_status(document) if fmt == "text" else json.dumps(document, indent=2) + "\n")
    return 0
