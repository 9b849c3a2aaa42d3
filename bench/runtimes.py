"""Runtime API costs: warm invoke overhead and cold start of Node.js and `provided` functions.

Warm: invocations one at a time through the invoke service (START/END/REPORT formatted, logged at
WARNING), for Python `isolation: process`, Node.js (pipelined's runtime client, a no-op async handler)
and `provided` (a Python bootstrap doing the Runtime API exchange with http.client). The baseline is a
bare loop: the same client program, the same HTTP exchange (GET next, POST response) against a minimal
asyncio HTTP server in this process, with nothing of pipelined in between. Overhead = pipelined - bare.
Cold: a new function's first invocation with the zygote already running; Init Duration is REPORT's.
Run: .venv/bin/python bench/runtimes.py [--invocations N] [--cold N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from pipelined.config import FunctionConfig
from pipelined.functions.function import Function
from pipelined.functions.runtime_api.launch import NODE_CLIENT
from pipelined.invoke.service import InvokeService
from pipelined.observe.logs import setup_logging

SERVICE = InvokeService()
ROUNDS = 5
EVENT = {"Records": [{"n": n, "body": "x" * 64} for n in range(10)]}
PY_HANDLER = "def handler(event, context):\n    return None\n"
NODE_HANDLER = "export const handler = async () => null;\n"
BOOTSTRAP = """#!{python}
import http.client, os
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
api = http.client.HTTPConnection(host, int(port))
while True:
    api.request("GET", "/2018-06-01/runtime/invocation/next")
    response = api.getresponse()
    response.read()
    request_id = response.getheader("Lambda-Runtime-Aws-Request-Id")
    api.request("POST", f"/2018-06-01/runtime/invocation/{{request_id}}/response", b"null")
    api.getresponse().read()
"""


def make_code(root: Path) -> dict[str, Path]:
    """One code directory per runtime, each with a no-op handler."""
    dirs = {name: root / name for name in ("python", "node", "provided")}
    for directory in dirs.values():
        directory.mkdir()
    (dirs["python"] / "noop.py").write_text(PY_HANDLER)
    (dirs["node"] / "noop.mjs").write_text(NODE_HANDLER)
    (dirs["provided"] / "bootstrap").write_text(BOOTSTRAP.format(python=sys.executable))
    (dirs["provided"] / "bootstrap").chmod(0o755)
    return dirs


def config_for(kind: str, code: Path) -> FunctionConfig:
    if kind == "python":
        return FunctionConfig(handler="noop.handler", code=code, timeout=30, isolation="process")
    runtime = "nodejs20.x" if kind == "node" else "provided"
    return FunctionConfig(handler="noop.handler", code=code, timeout=30, runtime=runtime, isolation="process")


async def warm(kind: str, code: Path) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """(one invocation through pipelined, close) for a started function of `kind`."""
    function = Function("bench", config_for(kind, code), "us-east-1")
    function.load()
    await function.start()

    async def one() -> None:
        await SERVICE.invoke(function, EVENT)

    return one, function.close


async def measure(one: Callable[[], Awaitable[None]], invocations: int) -> float:
    """Seconds per invocation of one batch."""
    started = time.perf_counter()
    for _ in range(invocations):
        await one()
    return (time.perf_counter() - started) / invocations


class BareApi(asyncio.Protocol):
    """The Runtime API exchange and nothing else: HTTP/1.1 keep-alive parsed by hand, one client."""

    def __init__(
        self, events: asyncio.Queue[tuple[str, bytes]], replies: dict[str, asyncio.Future[bytes]]
    ) -> None:
        self.events, self.replies = events, replies
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            length = next(
                (
                    int(v)
                    for k, _, v in (line.partition(": ") for line in lines[1:])
                    if k.lower() == "content-length"
                ),
                0,
            )
            if len(rest) < length:
                return
            body, self.buffer = rest[:length], rest[length:]
            method, path, _ = lines[0].split(" ", 2)
            if method == "GET":
                asyncio.get_running_loop().create_task(self._next())
            else:
                self.replies.pop(path.split("/")[4]).set_result(body)
                self._send(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")

    async def _next(self) -> None:
        request_id, event = await self.events.get()
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(event)}\r\n"
            f"Lambda-Runtime-Aws-Request-Id: {request_id}\r\nLambda-Runtime-Deadline-Ms: "
            f"{int(time.time() * 1000) + 30000}\r\nLambda-Runtime-Invoked-Function-Arn: arn\r\n\r\n"
        )
        self._send(head.encode() + event)

    def _send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)


async def bare(kind: str, code: Path) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """(one invocation, close): the same client doing the same exchange against BareApi."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    replies: dict[str, asyncio.Future[bytes]] = {}
    server = await loop.create_server(lambda: BareApi(events, replies), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "LAMBDA_TASK_ROOT": str(code),
        "_HANDLER": "noop.handler",
    }
    argv = ["node", str(NODE_CLIENT)] if kind == "node" else [str(code / "bootstrap")]
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=code, stdout=asyncio.subprocess.DEVNULL
    )
    counter = 0

    async def one() -> None:
        nonlocal counter
        counter += 1
        request_id = f"r{counter}"
        replies[request_id] = reply = loop.create_future()
        await events.put((request_id, json.dumps(EVENT, separators=(",", ":")).encode()))
        await reply

    async def close() -> None:
        process.kill()
        await process.wait()
        server.close()

    return one, close


async def cold(kind: str, code: Path, count: int) -> tuple[list[float], list[float]]:
    """(first-invocation times, Init Durations) of `count` new functions, the zygote already up."""
    keeper = Function("keeper", config_for("python", code.parent / "python"), "us-east-1")
    keeper.load()
    await SERVICE.invoke(keeper, EVENT)
    totals: list[float] = []
    inits: list[float] = []
    for n in range(count):
        function = Function(f"cold{n}", config_for(kind, code), "us-east-1")
        function.load()
        started = time.perf_counter()
        result = await SERVICE.invoke(function, EVENT)
        totals.append(time.perf_counter() - started)
        assert result.ok, result.error
        inits.append((result.init_duration_ms or 0) / 1000)
        await function.close()
    await keeper.close()
    return totals, inits


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f} ms"


async def best_of(pairs: dict[str, Callable[[], Awaitable[None]]], invocations: int) -> dict[str, float]:
    """Warm up each, then interleave rounds (a shared machine's noise hits all alike); best round each."""
    for one in pairs.values():
        for _ in range(300):
            await one()
    best = dict.fromkeys(pairs, float("inf"))
    for _ in range(ROUNDS):
        for name, one in pairs.items():
            best[name] = min(best[name], await measure(one, invocations))
    return best


async def run(invocations: int, cold_count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        code = make_code(Path(tmp))
        print(f"warm invoke, one at a time, best of {ROUNDS} interleaved rounds x {invocations}:")
        closers = []
        pairs: dict[str, Callable[[], Awaitable[None]]] = {}
        for name, maker, kind in [
            ("python", warm, "python"),
            ("node", warm, "node"),
            ("node-bare", bare, "node"),
            ("provided", warm, "provided"),
            ("provided-bare", bare, "provided"),
        ]:
            pairs[name], close = await maker(kind, code[kind])
            closers.append(close)
        best = await best_of(pairs, invocations)
        for close in closers:
            await close()
        python = best["python"]
        print(f"  python (isolation: process)  {ms(python)}")
        for kind in ("node", "provided"):
            ours, baseline = best[kind], best[f"{kind}-bare"]
            print(
                f"  {kind:<9} pipelined {ms(ours)}   bare loop {ms(baseline)}   "
                f"overhead {ms(ours - baseline)}   vs python x{ours / python:.2f}"
            )
        print(f"cold start (zygote running), median of {cold_count}:")
        for kind in ("python", "node", "provided"):
            totals, inits = await cold(kind, code[kind], cold_count)
            print(
                f"  {kind:<9} first invocation {ms(statistics.median(totals))}   "
                f"Init Duration {ms(statistics.median(inits))}"
            )
        started = time.perf_counter()
        node = await asyncio.create_subprocess_exec("node", "-e", "0")
        await node.wait()
        print(f"  for scale: `node -e 0` takes {ms(time.perf_counter() - started)} on this machine")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--invocations", type=int, default=2000)
    parser.add_argument("--cold", type=int, default=10)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args()
    setup_logging(args.log_level, "text", stream=open(os.devnull, "w"))  # noqa: SIM115
    logging.getLogger().setLevel(args.log_level)
    asyncio.run(run(args.invocations, args.cold))


if __name__ == "__main__":
    main()
