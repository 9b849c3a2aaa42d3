"""The command line of the development loop: `pipelined dev`, `pipelined events` and `invoke --event`."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from pipelined.config.sam import commands as sam_commands
from pipelined.sources.samples import SAMPLES, SampleOptions, sample_event


def add_sample_options(parser: argparse.ArgumentParser) -> None:
    """--body, --bucket, --key, --method, --path: what a sample event carries."""
    group = parser.add_argument_group("sample event")
    group.add_argument("--body", help="the message body, record data, object, item (JSON) or request body")
    group.add_argument("--bucket", help="s3: the bucket (default: sample-bucket)")
    group.add_argument("--key", help="s3: the object key (default: incoming/sample.txt)")
    group.add_argument("--method", help="api, http-api: the HTTP method (default: GET, POST with --body)")
    group.add_argument("--path", help="api, http-api: the request path, may end in ?QUERY (default: /hello)")


def sample_options(args: argparse.Namespace, region: str = "us-east-1") -> SampleOptions:
    """The sample options given on the command line."""
    return SampleOptions(args.body, args.bucket, args.key, args.method, args.path, region)


def add_events_parser(commands: Any, parser_class: type[argparse.ArgumentParser]) -> Any:
    """`pipelined events generate TYPE [options]`; returns the subcommands, for `events replay`."""
    events = commands.add_parser("events", help="sample events; replaying a bus's archived events")
    events_commands = events.add_subparsers(dest="events_command", required=True, parser_class=parser_class)
    types = "; ".join(f"{name}: {sample.about}" for name, sample in SAMPLES.items())
    generate = events_commands.add_parser(
        "generate", help="print a Lambda-shaped event", description=f"Event types: {types}."
    )
    generate.add_argument("type", choices=list(SAMPLES), help="the event type")
    generate.add_argument("--region", default="us-east-1", help="awsRegion of the event (default: us-east-1)")
    add_sample_options(generate)
    return events_commands


def events_command(args: argparse.Namespace, out: TextIO) -> int:
    """Print the sample event the command line asks for."""
    event = sample_event(args.type, sample_options(args, args.region))
    out.write(json.dumps(event, indent=2) + "\n")
    return 0


def add_dev_parser(
    commands: Any,
    parser_class: type[argparse.ArgumentParser],
    config_option: Any,
) -> None:
    """`pipelined dev [--port N] [--no-watch]`, `dev send`, `dev put`."""
    dev = commands.add_parser("dev", help="run the pipeline against a local AWS-protocol server (moto)")
    config_option(dev)
    dev.add_argument("--port", type=int, default=0, help="port of the local server (default: a free one)")
    dev.add_argument(
        "--no-watch", action="store_true", help="do not reload handlers and the config when they are saved"
    )
    dev_commands = dev.add_subparsers(dest="dev_command", parser_class=parser_class)
    send = dev_commands.add_parser("send", help="send a message to a queue of the running dev server")
    send.add_argument("queue", help="queue name, URL or ARN")
    send.add_argument("body", help="the message body ('-': read it from stdin)")
    send.add_argument("--group-id", help="MessageGroupId for a FIFO queue (default: 'default')")
    put = dev_commands.add_parser("put", help="upload a file to a bucket of the running dev server")
    put.add_argument("bucket")
    put.add_argument("key")
    put.add_argument("file", help="the file to upload ('-': stdin)")
    for sub in (send, put):
        # SUPPRESS: `dev -c FILE send ...` must not be reset to None by the subcommand's own default.
        sub.add_argument("-c", "--config", default=argparse.SUPPRESS, help="configuration file")
        sam_commands.add_options(sub, default=argparse.SUPPRESS)
