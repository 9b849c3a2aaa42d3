"""Gateway overhead: a no-op REST handler in `pipelined run` vs a bare aiohttp app running it in a thread.

Both servers are subprocesses on loopback and face the same client at the same concurrency: `wrk` when it
is installed (Debian's package), else an aiohttp client with a fixed number of workers. pipelined does the
whole path: route match, payload 1.0 event, invoke service (slot, START/END/REPORT at the chosen log
level, metrics), response mapping. The bare app hands the same event-less call to a thread and writes
the handler's body. Run: .venv/bin/python bench/gateway.py [--seconds 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HANDLER = (
    "def handler(event, context):\n"
    "    return {'statusCode': 200, 'headers': {'Content-Type': 'text/plain'}, 'body': 'ok'}\n"
)
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listening on {port}")


def bare_app(port: int) -> None:
    """The baseline: aiohttp calling the handler in a thread and returning its body."""
    from aiohttp import web

    namespace: dict[str, object] = {}
    exec(HANDLER, namespace)
    handler = namespace["handler"]
    pool = ThreadPoolExecutor(16)

    async def handle(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(pool, handler, {}, None)  # type: ignore[arg-type]
        return web.Response(text=result["body"], headers=result["headers"])  # type: ignore[index]

    app = web.Application()
    app.router.add_get("/noop", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def run_wrk(url: str, seconds: int, concurrency: int) -> tuple[float, float, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert match, out
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return rate, ms("50%"), ms("99%")


async def run_aiohttp_client(url: str, seconds: int, concurrency: int) -> tuple[float, float, float]:
    import aiohttp

    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    latencies.sort()
    return (
        len(latencies) / elapsed,
        latencies[len(latencies) // 2] * 1000,
        latencies[int(len(latencies) * 0.99)] * 1000,
    )


def measure(url: str, seconds: int, concurrency: int) -> tuple[float, float, float]:
    if shutil.which("wrk"):
        return run_wrk(url, seconds, concurrency)
    return asyncio.run(run_aiohttp_client(url, seconds, concurrency))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--log-level", default="WARNING", help="pipelined's logging.level (INFO logs REPORT)")
    parser.add_argument("--bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_app(args.bare)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "noop.py").write_text(HANDLER)
        gateway, ops, bare = free_port(), free_port(), free_port()
        (work / "pipelined.yaml").write_text(
            f"state_dir: {work / 'state'}\n"
            f"http: {{listen: '127.0.0.1:{ops}'}}\n"
            f"gateway: {{listen: '127.0.0.1:{gateway}'}}\n"
            f"logging: {{level: {args.log_level}}}\n"
            "functions:\n"
            f"  noop: {{code: {work}, handler: noop.handler,\n"
            "         events: [{type: api, path: /noop, method: get}]}\n"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        servers = [
            subprocess.Popen(
                [sys.executable, "-m", "pipelined", "run", "-c", str(work / "pipelined.yaml")],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen([sys.executable, __file__, "--bare", str(bare)], env=env),
        ]
        try:
            wait_port(gateway)
            wait_port(bare)
            client = "wrk" if shutil.which("wrk") else "aiohttp client"
            print(f"client: {client}, concurrency {args.concurrency}, {args.seconds}s each, ", end="")
            print(f"log level {args.log_level}")
            for port in (gateway, bare):  # warm up both (imports, first threads)
                measure(f"http://127.0.0.1:{port}/noop", 1, args.concurrency)
            base = measure(f"http://127.0.0.1:{bare}/noop", args.seconds, args.concurrency)
            ours = measure(f"http://127.0.0.1:{gateway}/noop", args.seconds, args.concurrency)
        finally:
            for server in servers:
                server.terminate()
                server.wait(10)
    print(f"bare aiohttp + thread: {base[0]:9.0f} req/s  p50 {base[1]:6.2f} ms  p99 {base[2]:6.2f} ms")
    print(f"pipelined gateway:     {ours[0]:9.0f} req/s  p50 {ours[1]:6.2f} ms  p99 {ours[2]:6.2f} ms")
    print(f"ratio: {ours[0] / base[0]:.2f}x the bare rate; p99 overhead {ours[2] - base[2]:+.2f} ms")


if __name__ == "__main__":
    main()
