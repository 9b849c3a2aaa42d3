"""Command line: run, validate, invoke, dlq, dev, events, s3, checkpoints, status, logs, sam; exit 0/1/2.

The arguments of every command are declared in cli/parser.py; this module runs them (0 ok, 1 failed,
2 usage).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pipelined.app.assembly import build_function
from pipelined.app.cluster_cli import run_command as run_cluster_command
from pipelined.app.dev_commands import events_command, sample_options
from pipelined.app.remote import api_endpoint, invoke_remote
from pipelined.app.replay import replay_command
from pipelined.aws import LazyClients
from pipelined.cli.parser import build_parser
from pipelined.config import Config, load_config
from pipelined.config.sam import commands as sam_commands
from pipelined.config.types import connect_host
from pipelined.core.timestamps import iso_seconds
from pipelined.errors import ConfigError, PipelinedError, UsageError
from pipelined.functions.function import Function
from pipelined.invoke.service import InvokeService
from pipelined.observe.logs import setup_logging
from pipelined.sources.registry import event_type
from pipelined.sources.samples import sample_event
from pipelined.state import STATE_FILE, Checkpoint, StateStore

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
# Lambda's limit for a synchronous invocation's request payload (6 MB).
SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024


def _config_path(value: str | None) -> Path:
    path = value or os.environ.get("PIPELINED_CONFIG")
    if not path:
        raise UsageError("no configuration file: pass -c FILE or set PIPELINED_CONFIG")
    return Path(path)


def _print_json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2, default=str) + "\n")
    out.flush()


def _read_payload(args: argparse.Namespace, region: str) -> tuple[Any, str]:
    """The event and its JSON text."""
    if args.event is not None:
        event = sample_event(args.event, sample_options(args, region))
        return event, json.dumps(event)
    if args.payload is not None and args.payload.startswith("@"):
        args.payload_file, args.payload = args.payload[1:], None  # --payload @FILE, as with curl
    if args.payload_file:
        try:
            text = Path(args.payload_file).read_text()
        except OSError as exc:
            raise UsageError(f"--payload-file {args.payload_file}: {exc.strerror}") from exc
        source = args.payload_file
    elif args.payload is not None:
        text, source = args.payload, "--payload"
    else:
        return {}, "{}"
    size = len(text.encode())
    if size > SYNC_PAYLOAD_LIMIT:
        raise UsageError(
            f"{source}: the payload is {size:,} bytes; Lambda accepts at most {SYNC_PAYLOAD_LIMIT:,} bytes "
            "(6 MB) for a synchronous invocation"
        )
    try:
        return json.loads(text), text
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc


def _check_function(config: Config, name: str) -> None:
    if name not in config.functions:
        known = ", ".join(sorted(config.functions))
        raise UsageError(f"no function '{name}' in {config.source_path} (functions: {known})")


def _function(config: Config, name: str, aws: LazyClients) -> Function:
    # The account is `aws.account_id` (or 000000000000): a one-shot invocation does not ask STS.
    _check_function(config, name)
    function = build_function(name, config, aws=aws)
    function.load()
    return function


async def _invoke(config: Config, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    event, text = _read_payload(args, config.aws.region)
    endpoint = api_endpoint(config)
    if endpoint is not None:
        # A running daemon: through its Lambda API, so reserved concurrency and the async queue apply.
        _check_function(config, args.function)
        remote = invoke_remote(config, endpoint, args.function, text, args.invocation_type, args.log_type)
        if remote.log is not None:
            err.write(remote.log)
        if args.invocation_type != "RequestResponse":
            _print_json({"StatusCode": remote.status}, out)
            return EXIT_OK
        payload = remote.payload
        _print_json(payload, out)
        return EXIT_FAILED if remote.function_error else EXIT_OK
    aws = LazyClients(config.aws)
    function = _function(config, args.function, aws)
    if args.invocation_type == "DryRun":
        _print_json({"StatusCode": 204}, out)
        return EXIT_OK
    try:
        # Without a daemon an Event runs here, once, with no retries: there is no queue to hold it.
        result = await InvokeService().invoke(function, event)
    finally:
        await function.close()  # isolation: process: stop the worker
        await aws.close()
    if args.invocation_type == "Event":
        _print_json({"StatusCode": 202}, out)
        return EXIT_OK
    _print_json(result.value if result.error is None else result.error.payload(), out)
    return EXIT_OK if result.ok else EXIT_FAILED


async def _dlq(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    state = await StateStore.open(config.state_dir, url=config.state.url)
    try:
        return await _dlq_command(state, config, args, out)
    finally:
        await state.close()


async def _dlq_command(state: StateStore, config: Config, args: argparse.Namespace, out: TextIO) -> int:
    if args.dlq_command == "list":
        entries = await state.dead_letters.list(args.function)
        for e in entries:
            message = (e.error or {}).get("errorMessage", "")
            out.write(f"{e.id}\t{e.function}/{e.source}\t{e.condition}\tattempts={e.attempts}\t{message}\n")
        out.write(f"{len(entries)} parked event(s)\n")
        return EXIT_OK
    if args.dlq_command == "show":
        entry = await state.dead_letters.get(args.id)
        if entry is None:
            raise UsageError(f"no parked event with id {args.id}")
        _print_json(
            {
                "id": entry.id,
                "function": entry.function,
                "source": entry.source,
                "condition": entry.condition,
                "attempts": entry.attempts,
                "firstFailedAt": entry.first_failed_at,
                "lastFailedAt": entry.last_failed_at,
                "event": entry.event,
                "error": entry.error,
                "failureRecord": entry.failure_record,
            },
            out,
        )
        return EXIT_OK
    if args.dlq_command == "purge":
        if args.function:
            ids = [e.id for e in await state.dead_letters.list(args.function)]
            removed = await state.dead_letters.delete(ids)
        else:
            removed = await state.dead_letters.delete()
        out.write(f"purged {removed} parked event(s)\n")
        return EXIT_OK
    # redrive
    if args.all:
        entries = await state.dead_letters.list()
    else:
        entry = await state.dead_letters.get(args.id)
        if entry is None:
            raise UsageError(f"no parked event with id {args.id}")
        entries = [entry]
    runtimes: dict[str, Function] = {}
    service = InvokeService()
    aws = LazyClients(config.aws)
    failures = 0
    try:
        for e in entries:
            if e.function not in runtimes:
                runtimes[e.function] = _function(config, e.function, aws)
            result = await service.invoke(runtimes[e.function], e.event)
            if result.ok:
                await state.dead_letters.delete([e.id])
                out.write(f"{e.id}\tredriven\n")
            else:
                failures += 1
                error = result.error.payload() if result.error is not None else None
                await state.dead_letters.mark_redrive_failed(e.id, error)
                message = (error or {}).get("errorMessage", "")
                out.write(f"{e.id}\tfailed again: {message}\n")
    finally:
        for runtime in runtimes.values():
            await runtime.close()  # isolation: process: stop the workers
        await aws.close()
    out.write(f"redrove {len(entries) - failures} of {len(entries)} parked event(s)\n")
    return EXIT_OK if failures == 0 else EXIT_FAILED


async def _s3_setup(config: Config, out: TextIO) -> int:
    from pipelined.aws import AwsClients
    from pipelined.sources.s3.via_sqs import setup_notifications

    aws = AwsClients(config.aws)
    try:
        lines = await setup_notifications(config, aws)
    finally:
        await aws.close()
    for line in lines:
        out.write(f"{line}\n")
    out.write(f"configured {len(lines)} bucket notification(s)\n")
    return EXIT_OK


async def _checkpoints(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    from pipelined.sources.streams.engine import reset_checkpoints

    if args.checkpoints_command == "reset":
        _check_stream_source(config, args.source)
        _refuse_if_running(config)
    state = await StateStore.open(config.state_dir, url=config.state.url)
    try:
        if args.checkpoints_command == "reset":
            out.write(await reset_checkpoints(state, args.source, args.to, args.shard) + "\n")
            return EXIT_OK
        # Markers (an MQTT subscription, a pending reset) were listed as checkpoints before they had a table.
        rows = await state.checkpoints.list(args.source)
        rows += [
            Checkpoint(m.source, m.kind, m.key, m.value, m.updated_at)
            for m in await state.markers.list(args.source)
        ]
        rows.sort(key=lambda c: (c.source, c.stream, c.shard))
    finally:
        await state.close()
    for c in rows:
        updated = iso_seconds(c.updated_at)
        out.write(f"{c.source}\t{c.stream}\t{c.shard}\t{c.sequence}\t{updated}\n")
    out.write(f"{len(rows)} checkpoint(s)\n")
    return EXIT_OK


def _check_stream_source(config: Config, key: str) -> None:
    function, _, name = key.partition("/")
    fn = config.functions.get(function)
    if fn is None or not any(e.name == name and event_type(e.type).checkpoints for e in fn.events):
        known = [
            f"{f}/{e.name}"
            for f, c in config.functions.items()
            for e in c.events
            if event_type(e.type).checkpoints
        ]
        raise UsageError(
            f"no stream source '{key}' in {config.source_path} (stream sources: {', '.join(known) or 'none'})"
        )


def _refuse_if_running(config: Config) -> None:
    # A running daemon holds its positions in memory and would write over a reset.
    try:
        with socket.create_connection((connect_host(config.http.host), config.http.port), timeout=0.5):
            pass
    except OSError:
        return
    raise UsageError(
        f"a daemon seems to be running (something listens on {config.http.listen}); "
        "stop it before resetting checkpoints"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pipelined` command; returns the exit code."""
    out, err = sys.stdout, sys.stderr
    config: Config | None = None
    try:
        args = build_parser().parse_args(argv)
        if args.command == "events" and args.events_command == "generate":
            return events_command(args, out)
        if args.command == "validate":
            if (args.file is None) == (args.sam is None):
                raise UsageError("validate: give a FILE or --sam TEMPLATE")
            config = sam_commands.load(args, err, lambda: load_config(args.file)).config
            out.write(f"{args.file or args.sam}: OK: {config.summary()}\n")
            return EXIT_OK
        if args.command == "sam":
            return sam_commands.convert(args, out, err)
        loaded = sam_commands.load(args, err, lambda: load_config(_config_path(args.config)))
        config = loaded.config
        if args.command == "run":
            from pipelined.app.daemon import run_daemon

            return run_daemon(config, args.reset_state, args.watch, loaded.loader)
        # One-shot commands log to stderr, so stdout carries only the result.
        setup_logging(config.logging.level, config.logging.format, stream=err)
        if args.command == "dev":
            from pipelined.devmode import dev_command

            return dev_command(config, args, out, loaded.loader, loaded.declared)
        if args.command == "events":
            return replay_command(config, args, out)
        if args.command == "s3":
            return asyncio.run(_s3_setup(config, out))
        if args.command == "invoke":
            return asyncio.run(_invoke(config, args, out, err))
        if args.command in ("state", "cluster"):
            return asyncio.run(run_cluster_command(config, args, out))
        if args.command == "logs":
            from pipelined.app.logs_command import logs_command

            return logs_command(config, args.function, args.since, args.filter, args.format, args.follow, out)
        if args.command == "status":
            from pipelined.app.status import status_command

            return status_command(config, args.format, out)
        if args.command == "checkpoints":
            return asyncio.run(_checkpoints(config, args, out))
        return asyncio.run(_dlq(config, args, out))
    except ConfigError as exc:
        for problem in exc.problems:
            err.write(problem + "\n")
        return EXIT_USAGE
    except PipelinedError as exc:
        err.write(f"pipelined: {exc}\n")
        return EXIT_USAGE
    except sqlite3.DatabaseError as exc:
        # A corrupt or foreign state file: say which, without a traceback.
        path = Path(config.state_dir) / STATE_FILE if config is not None else "the state file"
        err.write(f"pipelined: cannot read {path}: {exc} (is it a pipelined state file?)\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
