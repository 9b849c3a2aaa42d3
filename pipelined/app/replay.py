"""`pipelined events replay BUS --from T --to T [--rule R]`: re-deliver a bus's archived events.

The running daemon does the work: the command calls its EventBridge API's StartReplay (botocore's own
client, signed with the first `api.credentials` entry when there are any), as `aws events start-replay`
would on AWS. Each replayed event carries `replay-name`.
"""

from __future__ import annotations

import argparse
import datetime
import time
from typing import Any, TextIO

from pipelined.app.remote import api_client, api_endpoint
from pipelined.config import Config
from pipelined.errors import PipelinedError, UsageError
from pipelined.sources.eventbridge import EventRouter


def add_replay_parser(events_commands: Any, config_option: Any) -> None:
    """`pipelined events replay`, beside `events generate`."""
    replay = events_commands.add_parser(
        "replay", help="re-deliver archived events of a bus (the daemon must run)"
    )
    config_option(replay)
    replay.add_argument("bus", help="the event bus (it needs an `archive:`)")
    replay.add_argument("--from", dest="start", required=True, help="ISO-8601 time, e.g. 2026-01-01T00:00Z")
    replay.add_argument("--to", dest="end", required=True, help="ISO-8601 time (excluded), or 'now'")
    replay.add_argument("--rule", action="append", default=[], help="only this rule (repeatable)")
    replay.add_argument("--name", help="the replay's name (default: BUS-replay-<epoch>)")


def parse_time(text: str, option: str) -> datetime.datetime:
    """An ISO-8601 time (UTC unless it says otherwise), or 'now'; UsageError naming the option if neither."""
    if text == "now":
        return datetime.datetime.now(datetime.UTC)
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option}: {text!r} is not an ISO-8601 time such as 2026-01-01T00:00:00Z") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)


def replay_command(config: Config, args: argparse.Namespace, out: TextIO) -> int:
    """Ask the running daemon to replay; prints what it replayed."""
    from botocore.exceptions import BotoCoreError, ClientError

    router = EventRouter(config)
    bus = router.buses.get(args.bus)
    if bus is None:
        raise UsageError(f"no event bus named {args.bus!r} in {config.source_path}")
    if bus.config.archive is None:
        raise UsageError(f"event bus {args.bus!r} has no archive (event_buses.{args.bus}.archive)")
    rules = []
    for name in args.rule:
        rule = router.rule(args.bus, name)
        if rule is None:
            known = ", ".join(r.name for r in bus.rules) or "none"
            raise UsageError(f"--rule: no rule {name!r} on bus {args.bus!r} (its rules: {known})")
        rules.append(rule.arn)
    start, end = parse_time(args.start, "--from"), parse_time(args.end, "--to")
    if start >= end:
        raise UsageError("--from must be earlier than --to")
    endpoint = api_endpoint(config)
    if endpoint is None:
        raise PipelinedError(f"no daemon answers on api.listen ({config.api.listen}): start it first")
    client = api_client(config, "events", endpoint, read_timeout=300)
    destination: dict[str, Any] = {"Arn": bus.arn}
    if rules:
        destination["FilterArns"] = rules
    try:
        answer = client.start_replay(
            ReplayName=args.name or f"{args.bus}-replay-{int(time.time())}",
            EventSourceArn=bus.arn.replace(":event-bus/", ":archive/"),
            EventStartTime=start,
            EventEndTime=end,
            Destination=destination,
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise PipelinedError(f"{error.get('Code')}: {error.get('Message')}") from None
    except BotoCoreError as exc:
        raise PipelinedError(f"cannot reach the daemon's API at {endpoint}: {exc}") from None
    out.write(f"{answer['ReplayArn']}: {answer.get('StateReason', answer['State'])}\n")
    return 0
