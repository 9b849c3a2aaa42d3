"""Handlers for the dispatcher tests; behaviour is driven by the records they receive."""

import asyncio
import json
import os
import time

CALLS = []


def _called(event):
    ids = [r["id"] for r in event["Records"]]
    CALLS.append(ids)
    # With isolation: process the test cannot see this module (it lives in a worker): use a file.
    if "CALLS_FILE" in os.environ:
        with open(os.environ["CALLS_FILE"], "a") as f:
            f.write(json.dumps(ids) + "\n")


def reply(event, context):
    """Returns whatever the first record says to return (to test batchItemFailures parsing)."""
    _called(event)
    return event["Records"][0]["response"]


def poison(event, context):
    """Fails the whole batch when any record is poison."""
    _called(event)
    if any(r.get("poison") for r in event["Records"]):
        raise ValueError("poison record in batch")


def report_marked(event, context):
    """Reports the records marked `fail` as batch item failures."""
    _called(event)
    return {"batchItemFailures": [{"itemIdentifier": r["id"]} for r in event["Records"] if r.get("fail")]}


def sleep_sync(event, context):
    time.sleep(event["Records"][0].get("sleep", 0))
    return {"remaining": context.get_remaining_time_in_millis()}


async def sleep_async(event, context):
    await asyncio.sleep(event["Records"][0].get("sleep", 0))
    return {"greeting": os.environ.get("GREETING")}


def environment(event, context):
    return {k: os.environ.get(k) for k in ("GREETING", "AWS_LAMBDA_FUNCTION_NAME", "_HANDLER", "AWS_REGION")}


def chatty(event, context):
    print("line one")
    print("no newline at end", end="")
    return json.dumps(event)
