"""Handlers for the process-isolation tests: they hang, crash, exhaust memory or report what they see."""

import ctypes
import logging
import os
import sys
import time

INIT_PID = os.getpid()
INITS = 0
INITS += 1  # module-level init: runs once per worker

if os.environ.get("FAIL_INIT"):
    raise RuntimeError("init failed on purpose")


def info(event, context):
    """Everything a test may want to check about the worker and the context object."""
    time.sleep(event.get("sleep", 0))
    return {
        "pid": os.getpid(),
        "init_pid": INIT_PID,
        "inits": INITS,
        "environment": dict(os.environ),
        "cwd": os.getcwd(),
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "identity": {
                "cognito_identity_id": context.identity.cognito_identity_id,
                "cognito_identity_pool_id": context.identity.cognito_identity_pool_id,
            },
            "client_context": context.client_context,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
    }


def hang(event, context):
    """Never returns when the event says so (a stuck sync handler Python cannot interrupt)."""
    if event.get("hang"):
        while True:
            time.sleep(60)
    return {"pid": os.getpid()}


def exit_now(event, context):
    os._exit(event.get("status", 3))


def segfault(event, context):
    ctypes.string_at(0)


def hog(event, context):
    """Allocates until the memory limit stops it."""
    chunks = []
    while True:
        chunks.append(bytearray(8 * 1024 * 1024))


def chatty(event, context):
    print("to stdout")
    print("to stderr", file=sys.stderr)
    logging.getLogger("app").warning("a warning from %s", "logging")
    print("no newline at the end", end="")
    return "ok"


def unserializable(event, context):
    return {"a set": {1, 2}}


def fail(event, context):
    raise ValueError("handler failed")


async def async_info(event, context):
    return {"pid": os.getpid(), "remaining_ms": context.get_remaining_time_in_millis()}


def echo(event, context):
    """The event as the handler received it, and the Python type of each of its values."""
    return {"event": event, "types": {key: type(value).__name__ for key, value in event.items()}}


def returns(event, context):
    """Returns a value only JSON-ish libraries serialise (or a float JSON cannot hold)."""
    import datetime
    import decimal

    values = {
        "datetime": datetime.datetime(2026, 12, 2, tzinfo=datetime.UTC),
        "decimal": {"whole": decimal.Decimal("2"), "fraction": decimal.Decimal("1.5")},
        "nan": {"nan": float("nan"), "inf": float("inf")},
    }
    return values[event["kind"]]


def trace_views(event, context):
    """`_X_AMZN_TRACE_ID` as Python, C code (getenv) and a subprocess see it; then changes it if asked."""
    import subprocess

    getenv = ctypes.CDLL(None).getenv
    getenv.restype = ctypes.c_char_p
    shell = subprocess.run(
        ["sh", "-c", 'printf %s "$_X_AMZN_TRACE_ID"'], capture_output=True, text=True, check=True
    )
    views = {
        "os.environ": os.environ.get("_X_AMZN_TRACE_ID"),
        "getenv": (getenv(b"_X_AMZN_TRACE_ID") or b"").decode(),
        "subprocess": shell.stdout,
    }
    if event.get("then") == "delete":
        del os.environ["_X_AMZN_TRACE_ID"]
    elif event.get("then") == "set":
        os.environ["_X_AMZN_TRACE_ID"] = "set by the handler"
    return views
