"""`pipelined logs FUNCTION`: a function's lines like `aws logs tail`, from the running daemon or its store.

With a daemon answering on `http.listen` the lines come from its /logs stream (`--follow` keeps it open);
without one they are read from STATE_DIR/logs, and `--follow` watches the files until interrupted.
"""

from __future__ import annotations

import http.client
import time
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TextIO

from pipelined.config import Config
from pipelined.config.types import connect_host, parse_duration
from pipelined.errors import PipelinedError
from pipelined.observe.log_store import LogEntry, matches, read_entries, render

POLL_INTERVAL = 0.5


def since_epoch(value: str | None, now: float | None = None) -> float:
    """`--since`: a duration back from now ("10m", "2h", "1d") or an ISO 8601 time; 0 for everything."""
    if not value:
        return 0.0
    now = time.time() if now is None else now
    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PipelinedError(
            f"--since {value!r}: expected a duration such as 10m or 2h, or a time like 2026-12-01T10:00:00Z"
        ) from None
    return moment.timestamp()


def _daemon_lines(
    config: Config, function: str, since: float, text_filter: str | None, follow: bool
) -> Iterator[LogEntry] | None:
    """The daemon's /logs stream, or None when no daemon listens."""
    host, port = connect_host(config.http.host), config.http.port
    query = urllib.parse.urlencode(
        {
            "since": since,
            **({"filter": text_filter} if text_filter else {}),
            **({"follow": "1"} if follow else {}),
        }
    )
    connection = http.client.HTTPConnection(host, port, timeout=None if follow else 30)
    try:
        connection.request("GET", f"/logs/{urllib.parse.quote(function)}?{query}")
        response = connection.getresponse()
    except OSError:
        connection.close()
        return None
    if response.status != 200:
        body = response.read().decode(errors="replace").strip()
        connection.close()
        raise PipelinedError(f"the daemon on {config.http.listen} refused /logs: {response.status} {body}")

    def lines() -> Iterator[LogEntry]:
        try:
            for raw in response:
                entry = LogEntry.from_line(function, raw.decode("utf-8", errors="replace"))
                if entry is not None:
                    yield entry
        finally:
            connection.close()

    return lines()


def _stored_lines(
    directory: Path, function: str, since: float, retention: float, follow: bool
) -> Iterator[LogEntry]:
    """The store's lines; with `follow`, new ones as the files grow (a daemon flushes every 0.5 s)."""
    newest = since
    # Lines at exactly `newest` already printed: a file read again from that time skips them.
    printed_at_newest: set[tuple[str | None, str]] = set()
    while True:
        for entry in read_entries(directory, function, newest, retention):
            key = (entry.request_id, entry.text)
            if entry.time == newest and key in printed_at_newest:
                continue
            if entry.time > newest:
                newest, printed_at_newest = entry.time, set()
            printed_at_newest.add(key)
            yield entry
        if not follow:
            return
        time.sleep(POLL_INTERVAL)


def logs_command(
    config: Config,
    function: str,
    since: str | None,
    text_filter: str | None,
    fmt: str,
    follow: bool,
    out: TextIO,
) -> int:
    """Print the lines; exit 0 (a `--follow` ends with Ctrl-C)."""
    if function not in config.functions:
        raise PipelinedError(f"no function named {function!r} in the configuration")
    start = since_epoch(since)
    entries = _daemon_lines(config, function, start, text_filter, follow)
    if entries is None:
        stored = _stored_lines(log_directory(config), function, start, config.logging.store.retention, follow)
        entries = (e for e in stored if matches(e, text_filter))
    for entry in entries:
        out.write(render(entry, fmt) + "\n")
        out.flush()
    return 0


def log_directory(config: Config) -> Path:
    """Where the daemon keeps the log store."""
    return Path(config.state_dir) / "logs"
