"""Handlers for the Lambda API tests: they append what they saw to $RECORD_FILE as JSON lines."""

import json
import os
import time


def _record(event, context, **extra):
    line = {"event": event, "request_id": context.aws_request_id, "pid": os.getpid(), **extra}
    with open(os.environ["RECORD_FILE"], "a") as f:
        f.write(json.dumps(line) + "\n")


def echo(event, context):
    """Returns the event and what arrived as the client context."""
    cc = context.client_context
    _record(event, context)
    print(f"echo {context.aws_request_id}")
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "custom": cc.custom if cc else None,
        "env": cc.env if cc else None,
        "installation_id": cc.client.installation_id if cc and cc.client else None,
    }


def fail(event, context):
    _record(event, context)
    raise RuntimeError(f"cannot handle {event.get('n')}")


def slow(event, context):
    """Sleeps $SLEEP_SECONDS (default 0.2) after recording that it started."""
    _record(event, context, phase="start")
    time.sleep(float(os.environ.get("SLEEP_SECONDS", "0.2")))
    return {"slept": True, "n": event.get("n")}


def noop(event, context):
    return None
