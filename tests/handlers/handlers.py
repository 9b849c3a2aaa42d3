"""Handlers used by the end-to-end tests; they write what they saw to $RECORD_FILE as JSON lines."""

import json
import os
import time

INIT_COUNT = 0
INIT_COUNT += 1


def _record(event, context, **extra):
    line = {
        "event": event,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "env_greeting": os.environ.get("GREETING"),
        "init_count": INIT_COUNT,
        "pid": os.getpid(),
        **extra,
    }
    with open(os.environ["RECORD_FILE"], "a") as f:
        f.write(json.dumps(line) + "\n")


def record(event, context):
    _record(event, context)
    print(f"recorded {context.aws_request_id}")
    return {"ok": True}


def fail(event, context):
    _record(event, context)
    raise ValueError("boom: this handler always fails")


def fail_unless_fixed(event, context):
    """Fails until the file $FIXED_FLAG exists: lets a test 'deploy a fix' and redrive."""
    _record(event, context)
    if not os.path.exists(os.environ["FIXED_FLAG"]):
        raise RuntimeError("not fixed yet")
    return {"fixed": True}


def slow(event, context):
    _record(event, context, phase="start")
    time.sleep(float(os.environ.get("SLEEP_SECONDS", "2")))
    _record(event, context, phase="end")
    return {"slept": True}
