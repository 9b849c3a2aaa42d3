"""The arguments of every `pipelined` command (cli/__init__.py runs them)."""

from __future__ import annotations

import argparse
from typing import Any

from pipelined import __version__
from pipelined.app.cluster_cli import add_commands as cluster_commands
from pipelined.app.dev_commands import add_dev_parser, add_events_parser, add_sample_options
from pipelined.app.replay import add_replay_parser
from pipelined.config.sam import commands as sam_commands
from pipelined.errors import UsageError
from pipelined.sources.samples import SAMPLES


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The `pipelined` command and its subcommands."""
    parser = _Parser(prog="pipelined", description="A self-hosted, Lambda-compatible event pipeline daemon.")
    parser.add_argument("--version", action="version", version=f"pipelined {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def config_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--config", help="configuration file (default: $PIPELINED_CONFIG)")
        sam_commands.add_options(p)

    run = commands.add_parser("run", help="run the daemon")
    config_option(run)
    run.add_argument(
        "--reset-state",
        action="store_true",
        help="delete the state file first: checkpoints, schedule times and dead letters start afresh",
    )
    run.add_argument("--watch", action="store_true", help="reload handlers and the config when saved")

    sam_commands.add_commands(commands, _Parser)  # validate, sam convert

    invoke = commands.add_parser("invoke", help="invoke a function once and print its result")
    invoke.add_argument("function")
    config_option(invoke)
    payload = invoke.add_mutually_exclusive_group()
    payload.add_argument("--payload", help="the event, as JSON, or @FILE holding it")
    payload.add_argument("--payload-file", help="a file holding the event as JSON")
    payload.add_argument(
        "--event", choices=list(SAMPLES), help="a sample event of this type (events generate)"
    )
    add_sample_options(invoke)
    invoke.add_argument(
        "--invocation-type",
        choices=("RequestResponse", "Event", "DryRun"),
        default="RequestResponse",
        help="as Lambda's Invoke (default: RequestResponse)",
    )
    invoke.add_argument(
        "--log-type", choices=("None", "Tail"), help="Tail: print the invocation's log to stderr"
    )

    dlq = commands.add_parser("dlq", help="the local dead-letter store")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True, parser_class=_Parser)
    dlq_list = dlq_commands.add_parser("list", help="list parked events")
    dlq_list.add_argument("--function")
    dlq_show = dlq_commands.add_parser("show", help="show one parked event in full")
    dlq_show.add_argument("id", type=int)
    redrive = dlq_commands.add_parser("redrive", help="invoke parked events again; delete those that succeed")
    target = redrive.add_mutually_exclusive_group(required=True)
    target.add_argument("id", type=int, nargs="?")
    target.add_argument("--all", action="store_true")
    purge = dlq_commands.add_parser("purge", help="delete parked events")
    purge.add_argument("--function")
    for sub in (dlq_list, dlq_show, redrive, purge):
        config_option(sub)

    cluster_commands(commands, config_option)  # state migrate, cluster status

    add_dev_parser(commands, _Parser, config_option)
    add_replay_parser(add_events_parser(commands, _Parser), config_option)
    s3 = commands.add_parser("s3", help="S3 helpers")
    s3_commands = s3.add_subparsers(dest="s3_command", required=True, parser_class=_Parser)
    setup = s3_commands.add_parser(
        "setup-notifications", help="make the buckets of the config's s3 sources notify their SQS queues"
    )
    config_option(setup)

    _checkpoints_parser(commands, config_option)
    return parser


def _checkpoints_parser(commands: Any, config_option: Any) -> None:
    # `checkpoints`, `status` and `logs`: commands about the state of a pipeline.
    checkpoints = commands.add_parser("checkpoints", help="stream checkpoints (kinesis, dynamodb_stream)")
    ckpt_commands = checkpoints.add_subparsers(
        dest="checkpoints_command", required=True, parser_class=_Parser
    )
    ckpt_list = ckpt_commands.add_parser("list", help="show the stored checkpoints")
    ckpt_list.add_argument("--source", help="only this source (FUNCTION/SOURCE)")
    reset = ckpt_commands.add_parser("reset", help="rewind a stream source (stop the daemon first)")
    reset.add_argument("source", help="FUNCTION/SOURCE")
    reset.add_argument("--to", help="TRIM_HORIZON, LATEST or a sequence number (default: starting_position)")
    reset.add_argument("--shard", help="the shard of the sequence number given with --to")
    status = commands.add_parser("status", help="functions, sources, lag and queue depths of the daemon")
    status.add_argument("--format", choices=("text", "json"), default="text")
    logs = commands.add_parser("logs", help="a function's log lines, like `aws logs tail`")
    logs.add_argument("function")
    logs.add_argument("--follow", action="store_true", help="keep printing new lines (Ctrl-C stops)")
    logs.add_argument("--since", help="how far back: 10m, 2h, 1d, or a time (default: all kept)")
    logs.add_argument("--filter", help="only lines containing this text")
    logs.add_argument("--format", choices=("short", "json"), default="short")
    for sub in (ckpt_list, reset, status, logs):
        config_option(sub)
