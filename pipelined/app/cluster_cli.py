"""`pipelined state migrate` and `pipelined cluster status`: the shared PostgreSQL state, for operators."""

from __future__ import annotations

import argparse
import time
from typing import Any, TextIO

import psycopg

from pipelined.config import Config
from pipelined.errors import StateError, UsageError
from pipelined.state import StateStore
from pipelined.state.cluster import SCHEDULE, held_by, leases, members
from pipelined.state.postgres import Database, migrate, redact


def add_commands(commands: Any, config_option: Any) -> None:
    """The `state` and `cluster` subcommands."""
    state = commands.add_parser("state", help="the state database")
    state_commands = state.add_subparsers(dest="state_command", required=True)
    config_option(state_commands.add_parser("migrate", help="bring the state's schema up to date now"))
    cluster = commands.add_parser("cluster", help="the daemons sharing a PostgreSQL state")
    cluster_commands = cluster.add_subparsers(dest="cluster_command", required=True)
    config_option(cluster_commands.add_parser("status", help="members, leases, schedule leaders, queues"))


async def run_command(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    """Run `state migrate` or `cluster status`; returns the exit code."""
    if args.command == "state":
        return await _migrate(config, out)
    if config.state.url is None:
        raise UsageError("cluster status needs a shared state: set state.url to a postgresql:// URL")
    store = await StateStore.open(config.state_dir, url=config.state.url)
    try:
        db = store.database
        assert db is not None
        member_rows, lease_rows = await members(db), await leases(db)
        per_member = held_by(lease_rows)
        live = [m for m in member_rows if m.heartbeat_age < config.cluster.lease_duration]
        out.write(f"members: {len(live)} live of {len(member_rows)} known\n")
        for m in member_rows:
            state = "live" if m in live else "silent"
            out.write(
                f"  {m.member_id}  {state}  heartbeat {m.heartbeat_age:.1f}s ago"
                f"  shard leases {per_member.get(m.member_id, 0)}\n"
            )
        out.write("shard leases:\n")
        for r in lease_rows:
            if r.shard != SCHEDULE:
                owner = r.owner if r.owner is not None and r.expires_in > 0 else "-"
                out.write(f"  {r.source}  {r.shard}  owner {owner}  counter {r.counter}\n")
        out.write("schedule leaders:\n")
        for r in lease_rows:
            if r.shard == SCHEDULE:
                leader = r.owner if r.owner is not None and r.expires_in > 0 else "-"
                out.write(f"  {r.source}  leader {leader}\n")
        queued = await store.async_events.count()
        parked = len(await store.dead_letters.list())
        out.write(f"queues: async events {queued}, dead letters {parked}\n")
    finally:
        await store.close(flush=False)
    return 0


async def _migrate(config: Config, out: TextIO) -> int:
    started = time.monotonic()
    if config.state.url is None:
        store = await StateStore.open(config.state_dir)
        version = await store.schema_version()
        await store.close()
        out.write(f"{store.path}: schema version {version} (up to date)\n")
        return 0
    db = Database(config.state.url)
    try:
        await db.connect()
        before, after = await migrate(db)
    except psycopg.Error as exc:
        raise StateError(f"cannot migrate {redact(db.url)}: {str(exc).strip()}") from exc
    finally:
        await db.close()
    out.write(f"{redact(db.url)}: schema version {after} (was {before}; {time.monotonic() - started:.1f}s)\n")
    return 0
