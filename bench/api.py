"""Lambda API overhead: synchronous Invoke round trips through `pipelined run` vs a bare aiohttp server.

Both servers run as their own process and call the same no-op handler in a thread; one client in this
process sends `POST /2015-03-31/functions/noop/invocations` one after another on a kept-alive
connection. pipelined adds the request id, function lookup, permission check, payload checks, the
invoke service (slot, START/END/REPORT logging, metrics) and Lambda's response headers.
Run: .venv/bin/python bench/api.py [--requests N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
HANDLER = "def handler(event, context):\n    return None\n"
PATH = "/2015-03-31/functions/noop/invocations"
PAYLOAD = b'{"key": "value"}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bare_server(port: int) -> None:
    """The baseline: aiohttp, JSON in and out, the handler in a worker thread."""
    from concurrent.futures import ThreadPoolExecutor

    from aiohttp import web

    namespace: dict[str, object] = {}
    exec(HANDLER, namespace)
    handler = namespace["handler"]
    pool = ThreadPoolExecutor(4)

    async def invoke(request: web.Request) -> web.Response:
        event = json.loads(await request.read())
        value = await asyncio.get_running_loop().run_in_executor(pool, handler, event, None)  # type: ignore[arg-type]
        return web.Response(body=json.dumps(value).encode(), content_type="application/json")

    app = web.Application()
    app.router.add_post(PATH, invoke)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def start_pipelined(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    code = workdir / "code"
    code.mkdir(exist_ok=True)
    (code / "bench_api_handler.py").write_text(HANDLER)
    port = free_port()
    config = {
        "state_dir": str(workdir / "state"),
        "http": {"listen": f"127.0.0.1:{free_port()}"},
        "api": {"listen": f"127.0.0.1:{port}"},
        "functions": {"noop": {"code": str(code), "handler": "bench_api_handler.handler"}},
    }
    path = workdir / "pipelined.yaml"
    path.write_text(yaml.safe_dump(config))
    log = (workdir / "daemon.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelined", "run", "-c", str(path)], stdout=log, stderr=log, cwd=ROOT
    )
    wait_listening(port, process)
    return process, port


def start_bare() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--bare-server", str(port)], cwd=ROOT)
    wait_listening(port, process)
    return process, port


async def measure(port: int, requests: int) -> list[float]:
    """Latencies (seconds) of `requests` sequential invocations, after a warm-up."""
    url = f"http://127.0.0.1:{port}{PATH}"
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        for i in range(requests + 200):
            started = time.perf_counter()
            async with session.post(url, data=PAYLOAD) as response:
                await response.read()
                assert response.status == 200, response.status
            if i >= 200:
                latencies.append(time.perf_counter() - started)
    return latencies


def summary(latencies: list[float]) -> tuple[float, float, float]:
    """(requests per second, p50 ms, p99 ms)."""
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return len(latencies) / sum(latencies), statistics.median(ordered) * 1000, p99 * 1000


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(args.bare_server)
        return
    with tempfile.TemporaryDirectory() as tmp:
        daemon, daemon_port = start_pipelined(Path(tmp))
        bare, bare_port = start_bare()
        results: dict[str, list[tuple[float, float, float]]] = {"bare": [], "pipelined": []}
        try:
            # Interleaved rounds, so both see the same machine load; each keeps its best round.
            for _ in range(args.rounds):
                results["bare"].append(summary(asyncio.run(measure(bare_port, args.requests))))
                results["pipelined"].append(summary(asyncio.run(measure(daemon_port, args.requests))))
        finally:
            stop(daemon)
            stop(bare)
    best = {name: max(rounds) for name, rounds in results.items()}
    for name, (rate, p50, p99) in best.items():
        print(f"{name:>10}: {rate:8.0f} invokes/s   p50 {p50:6.3f} ms   p99 {p99:6.3f} ms")
    (bare_rate, _, bare_p99), (rate, _, p99) = best["bare"], best["pipelined"]
    print(
        f"     ratio: {rate / bare_rate:.2f}x the bare server's rate; p99 overhead {p99 - bare_p99:+.3f} ms"
    )
    print(
        f"   (cores: {os.cpu_count()}, {args.requests} sequential requests per round, {args.rounds} rounds)"
    )


if __name__ == "__main__":
    main()
