"""GET /logs/FUNCTION on the ops listener: a function's stored lines, then (`follow=1`) new ones as they come.

The body is newline-delimited JSON, one LogEntry payload a line; `pipelined logs` renders it.
Query: `since` (epoch seconds), `filter` (text the line must contain), `follow` (1 to keep streaming).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from aiohttp import web

from pipelined.observe.log_store import LogEntry, LogStore, matches, read_entries

_KEEPALIVE = 15.0


def _query_float(request: web.Request, name: str) -> float:
    try:
        return float(request.query.get(name, "0"))
    except ValueError:
        raise web.HTTPBadRequest(
            text=f"{name} must be epoch seconds, got {request.query[name]!r}\n"
        ) from None


async def stream_logs(request: web.Request, store: LogStore, stopping: asyncio.Event) -> web.StreamResponse:
    """The handler of GET /logs/{function}."""
    function = request.match_info["function"]
    since = _query_float(request, "since")
    text_filter = request.query.get("filter") or None
    follow = request.query.get("follow") == "1"
    live: asyncio.Queue[LogEntry] = asyncio.Queue()
    # Follow before reading what is stored, so a line logged in between is not missed; the ones read
    # from the store too are recognised and sent once.
    unfollow = store.follow(asyncio.get_running_loop(), live.put_nowait) if follow else None
    try:
        store.flush()
        stored = await asyncio.to_thread(
            lambda: [
                e
                for e in read_entries(store.directory, function, since, store.retention)
                if matches(e, text_filter)
            ]
        )
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        seen = {(e.time, e.request_id, e.text) for e in stored}
        for entry in stored:
            await response.write(json.dumps(entry.payload()).encode() + b"\n")
        while follow and not stopping.is_set():
            new = await _next(live, stopping)
            if new is None:
                await response.write(b"\n")  # a blank line keeps proxies from closing an idle stream
                continue
            if new.function != function or not matches(new, text_filter):
                continue
            if (new.time, new.request_id, new.text) in seen:
                continue
            await response.write(json.dumps(new.payload()).encode() + b"\n")
        await response.write_eof()
        return response
    finally:
        if unfollow is not None:
            unfollow()


async def _next(live: asyncio.Queue[LogEntry], stopping: asyncio.Event) -> LogEntry | None:
    getter = asyncio.ensure_future(live.get())
    stopper = asyncio.ensure_future(stopping.wait())
    try:
        done, _ = await asyncio.wait(
            {getter, stopper}, timeout=_KEEPALIVE, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for task in (getter, stopper):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if getter in done and not getter.cancelled():
        return getter.result()
    return None
