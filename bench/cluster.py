"""Cluster: stream throughput with 1, 2 and 3 members on one 4-shard stream, failover after kill -9, and
the database round trips a batch costs.

moto and every member run as processes of their own; the members share a fresh PostgreSQL database
(created on --server and dropped at the end). For each member count the members start on a fresh, empty
stream (not timed) and wait until its four shard leases are spread; then the clock runs from putting
--records records (500 a call) until the handlers were given every record (the handler appends one
line per batch to its member's file); with moto as the stream the put is most of that time.
Ratio: records/s against one member, measured in the same run.
Failover: two members, balanced 2/2; one is killed with SIGKILL; seconds until the other holds all four
leases (median and max of --kills). Round trips: PostgreSQL transactions (pg_stat_database.xact_commit)
of the one-member run divided by its batches.
Run: .venv/bin/python bench/cluster.py [--records N] [--kills N] [--server postgresql://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import yaml

HANDLER = """import json, os


def handler(event, context):
    with open(os.environ["COUNT_FILE"], "a") as f:
        f.write(json.dumps(len(event["Records"])) + "\\n")
"""
SHARDS = 4
BATCH = 100
LEASE = 3.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(predicate: Callable[[], Any], timeout: float, what: str | Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(0.05)


def psql(server: str, sql: str) -> str:
    done = subprocess.run(["psql", server, "-qtAc", sql], check=True, capture_output=True, text=True)
    return done.stdout.strip()


class Member:
    """One `pipelined run` process."""

    def __init__(self, root: Path, name: str, url: str, moto: str, stream: str) -> None:
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.counts = self.dir / "counts.jsonl"
        config = {
            "state_dir": str(self.dir / "state"),
            "state": {"url": url},
            "cluster": {"member_id": name, "lease_duration": f"{LEASE}s", "renew_interval": "1s"},
            "http": {"listen": f"127.0.0.1:{self.port}"},
            "api": {"listen": None},
            "aws": {"endpoint_url": moto},
            "logging": {"level": "WARNING"},
            "functions": {
                "fn": {
                    "code": str(root.parent),
                    "handler": "bench_handler.handler",
                    "events": [
                        {
                            "type": "kinesis",
                            "name": "src",
                            "stream": stream,
                            "batch_size": BATCH,
                            "starting_position": "TRIM_HORIZON",
                        }
                    ],
                }
            },
        }
        self.config = self.dir / "pipelined.yaml"
        self.config.write_text(yaml.safe_dump(config))
        env = {
            **os.environ,
            "COUNT_FILE": str(self.counts),
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        log = (self.dir / "daemon.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelined", "run", "-c", str(self.config)],
            stdout=log,
            stderr=log,
            env=env,
        )

    def log(self) -> str:
        if self.process.poll() is not None:
            return f"exited {self.process.returncode}: " + (self.dir / "daemon.log").read_text()[-3000:]
        return (self.dir / "daemon.log").read_text()[-3000:]

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def leases(self) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return -1
        for line in text.splitlines():
            if line.startswith('pipelined_leases_held{kind="shard"}'):
                return int(float(line.rsplit(" ", 1)[1]))
        return 0

    def delivered(self) -> int:
        if not self.counts.exists():
            return 0
        return sum(int(x) for x in self.counts.read_text().split())

    def batches(self) -> int:
        return len(self.counts.read_text().split()) if self.counts.exists() else 0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(30)


def put(kinesis: Any, stream: str, records: int) -> None:
    for start in range(0, records, 500):
        entries = [
            {"Data": json.dumps({"n": n}).encode(), "PartitionKey": f"pk-{n}"}
            for n in range(start, min(records, start + 500))
        ]
        kinesis.put_records(StreamName=stream, Records=entries)


def throughput(
    root: Path, url: str, moto: str, kinesis: Any, count: int, records: int, server: str
) -> tuple[float, float]:
    stream = f"bench-{count}"
    kinesis.create_stream(StreamName=stream, ShardCount=SHARDS)
    wait(
        lambda: (
            kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"]
            == "ACTIVE"
        ),
        30,
        "the stream",
    )
    db = url.rsplit("/", 1)[1]
    members = [Member(root / stream, f"m{i}", url, moto, stream) for i in range(count)]
    try:
        for m in members:
            wait(m.ready, 60, lambda m=m: f"member {m.dir.name} ready; its log:\n{m.log()}")  # type: ignore[misc]
        wait(lambda: _balanced([m.leases() for m in members]), 60, "the leases to spread")
        before = int(psql(server, f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{db}'"))
        started = time.monotonic()
        put(kinesis, stream, records)
        wait(lambda: sum(m.delivered() for m in members) >= records, 600, "every record")
        elapsed = time.monotonic() - started
        after = int(psql(server, f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{db}'"))
        batches = sum(m.batches() for m in members)
    finally:
        for m in members:
            m.stop()
    return records / elapsed, (after - before) / max(1, batches)


def failovers(root: Path, url: str, moto: str, kinesis: Any, kills: int) -> list[float]:
    stream = "bench-failover"
    kinesis.create_stream(StreamName=stream, ShardCount=SHARDS)
    survivor = Member(root / stream, "keeper", url, moto, stream)
    times: list[float] = []
    try:
        wait(survivor.ready, 60, "the surviving member")
        for i in range(kills):
            victim = Member(root / stream, f"victim{i}", url, moto, stream)
            wait(lambda v=victim: v.leases() == 2 and survivor.leases() == 2, 60, "a 2/2 balance")  # type: ignore[misc]
            victim.stop(signal.SIGKILL)
            killed = time.monotonic()
            wait(lambda: survivor.leases() == SHARDS, 60, "the takeover")
            times.append(time.monotonic() - killed)
    finally:
        survivor.stop()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    moto_port = free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{moto_port}"
    name = f"pipelined_bench_{uuid.uuid4().hex[:8]}"
    psql(f"{args.server}/postgres", f"CREATE DATABASE {name}")
    url = f"{args.server}/{name}"
    try:
        wait(lambda: _up(endpoint), 30, "moto")
        kinesis = boto3.client(
            "kinesis",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "bench_handler.py").write_text(HANDLER)
            results = {
                n: throughput(root, url, endpoint, kinesis, n, args.records, f"{args.server}/postgres")
                for n in (1, 2, 3)
            }
            base = results[1][0]
            print(f"stream throughput, {SHARDS} shards, {args.records} records, batch {BATCH}:")
            for n, (rate, _) in results.items():
                print(f"  {n} member(s): {rate:8.0f} records/s  ratio {rate / base:.2f}x one member")
            print(f"  database transactions per batch (one member): {results[1][1]:.2f}")
            times = failovers(root, url, endpoint, kinesis, args.kills)
            print(
                f"failover after kill -9 (lease {LEASE:g}s, {len(times)} kills): median "
                f"{statistics.median(times):.2f}s, max {max(times):.2f}s"
            )
    finally:
        moto.terminate()
        moto.wait(10)
        psql(f"{args.server}/postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _balanced(held: list[int]) -> bool:
    return sum(held) == SHARDS and max(held) - min(held) <= 1


def _up(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(endpoint, timeout=1)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


if __name__ == "__main__":
    main()
