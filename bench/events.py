"""EventBridge: events/s from PutEvents to the handler with 20 rules on the bus, and the matcher's cost.

1. End to end: `pipelined run` with one no-op function and 20 rules on the default bus (each event
   matches one of them, so every event is checked against all 20). Clients POST `AWSEvents.PutEvents`
   (10 entries a call, 4 calls in flight) and the clock stops when the handler has run for every event
   (`pipelined_invocations_total{source="async"}`). The baseline, in the same daemon and run: the same
   number of Lambda API `Event` invokes (the async queue without routing), 4 in flight.
2. The matcher: a compiled pattern's `matches()` per event per rule, against a bare loop of the same
   comparisons written by hand on the dict.
Run: .venv/bin/python bench/events.py [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelined.core.event_patterns import compile_pattern  # noqa: E402

HANDLER = "def handler(event, context):\n    return None\n"
RULES = 20
IN_FLIGHT = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pattern(i: int) -> dict[str, Any]:
    return {"source": ["bench"], "detail-type": [f"type-{i}"], "detail": {"amount": [{"numeric": [">", 0]}]}}


def start_pipelined(workdir: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    code = workdir / "code"
    code.mkdir(exist_ok=True)
    (code / "bench_events_handler.py").write_text(HANDLER)
    api, ops = free_port(), free_port()
    rules = [{"type": "eventbridge", "name": f"r{i}", "pattern": pattern(i)} for i in range(RULES)]
    config = {
        "state_dir": str(workdir / "state"),
        "http": {"listen": f"127.0.0.1:{ops}"},
        "api": {"listen": f"127.0.0.1:{api}", "max_queued_events": 1_000_000},
        "logging": {"level": "WARNING"},
        "functions": {
            "sink": {"code": str(code), "handler": "bench_events_handler.handler", "events": rules},
        },
    }
    path = workdir / "pipelined.yaml"
    path.write_text(yaml.safe_dump(config))
    log = (workdir / "daemon.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelined", "run", "-c", str(path)], stdout=log, stderr=log, cwd=ROOT
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"pipelined exited with {process.returncode}; see {workdir / 'daemon.log'}")
        try:
            with socket.create_connection(("127.0.0.1", api), timeout=0.2):
                return process, api, ops
        except OSError:
            time.sleep(0.05)
    raise SystemExit("pipelined did not start")


def invocations(ops: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{ops}/metrics", timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("pipelined_invocations_total{") and 'source="async"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def run_clients(requests: list[tuple[str, dict[str, str], bytes]], expected: int) -> None:
    queue: asyncio.Queue[tuple[str, dict[str, str], bytes]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            url, headers, body = queue.get_nowait()
            async with session.post(url, data=body, headers=headers) as response:
                answer = await response.read()
                assert response.status in (200, 202), (response.status, answer)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=IN_FLIGHT)) as session:
        await asyncio.gather(*(client(session) for _ in range(IN_FLIGHT)))


def timed(ops: int, requests: list[tuple[str, dict[str, str], bytes]], events: int) -> float:
    """Events per second from the first request to the handler's last invocation."""
    before = invocations(ops)
    started = time.perf_counter()
    asyncio.run(run_clients(requests, events))
    while invocations(ops) < before + events:
        time.sleep(0.01)
    return events / (time.perf_counter() - started)


def put_events_requests(api: int, events: int) -> list[tuple[str, dict[str, str], bytes]]:
    headers = {"X-Amz-Target": "AWSEvents.PutEvents", "Content-Type": "application/x-amz-json-1.1"}
    requests = []
    for start in range(0, events, 10):
        entries = [
            {"Source": "bench", "DetailType": f"type-{n % RULES}", "Detail": json.dumps({"amount": n + 1})}
            for n in range(start, min(start + 10, events))
        ]
        requests.append((f"http://127.0.0.1:{api}/", headers, json.dumps({"Entries": entries}).encode()))
    return requests


def invoke_requests(api: int, events: int) -> list[tuple[str, dict[str, str], bytes]]:
    url = f"http://127.0.0.1:{api}/2015-03-31/functions/sink/invocations"
    headers = {"X-Amz-Invocation-Type": "Event"}
    return [(url, headers, json.dumps({"amount": n + 1}).encode()) for n in range(events)]


def matcher(repeat: int) -> tuple[float, float]:
    """(ns per event per rule for compiled patterns, ns for the hand-written comparisons)."""
    compiled = [compile_pattern(pattern(i)) for i in range(RULES)]
    event = {"source": "bench", "detail-type": "type-7", "detail": {"amount": 12}, "id": "x", "resources": []}
    started = time.perf_counter()
    for _ in range(repeat):
        for rule in compiled:
            rule.matches(event)
    patterns = time.perf_counter() - started
    wanted = [f"type-{i}" for i in range(RULES)]
    started = time.perf_counter()
    for _ in range(repeat):
        for kind in wanted:
            amount = event["detail"].get("amount")  # type: ignore[attr-defined]
            _ = (
                event.get("source") == "bench"
                and event.get("detail-type") == kind
                and isinstance(amount, int | float)
                and amount > 0
            )
    bare = time.perf_counter() - started
    per = 1e9 / (repeat * RULES)
    return patterns * per, bare * per


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        daemon, api, ops = start_pipelined(Path(tmp))
        results: dict[str, list[float]] = {"invoke Event": [], "PutEvents": []}
        try:
            timed(ops, put_events_requests(api, 200), 200)  # warm-up
            # Interleaved rounds, so both see the same machine load; each keeps its best round.
            for _ in range(args.rounds):
                results["invoke Event"].append(timed(ops, invoke_requests(api, args.events), args.events))
                results["PutEvents"].append(timed(ops, put_events_requests(api, args.events), args.events))
        finally:
            stop(daemon)
    best = {name: max(rounds) for name, rounds in results.items()}
    for name, rate in best.items():
        print(f"{name:>13}: {rate:8.0f} events/s delivered to the handler")
    ratio = best["PutEvents"] / best["invoke Event"]
    print(f"        ratio: {ratio:.2f}x the rate of bare async invokes ({RULES} rules on the bus)")
    compiled, bare = min(matcher(20_000) for _ in range(args.rounds))
    print(f"      matcher: {compiled:6.0f} ns per event per rule; hand-written comparisons {bare:6.0f} ns")
    print(f"        ratio: {compiled / bare:.2f}x the bare dict comparison loop")
    print(f"   (cores: {os.cpu_count()}, {args.events} events per round, {args.rounds} rounds)")


if __name__ == "__main__":
    main()
