"""Handlers for the Kinesis and DynamoDB stream tests.

Each keeps the records it was given in CALLS (in-process tests) and, when $RECORD_FILE is set, appends
one JSON line per invocation (daemon subprocess tests). A record's "body" is its Kinesis data as JSON
or its DynamoDB NewImage with S/N/BOOL values unwrapped.
"""

import base64
import json
import os
import time

CALLS = []
SEEN = set()


def body(record):
    if "kinesis" in record:
        try:
            return json.loads(base64.b64decode(record["kinesis"]["data"]))
        except ValueError:
            return {}
    image = record["dynamodb"].get("NewImage", {})
    return {k: next(iter(v.values())) for k, v in image.items() if {"S", "N", "BOOL"} & v.keys()}


def sequence(record):
    return (
        record["kinesis"]["sequenceNumber"] if "kinesis" in record else record["dynamodb"]["SequenceNumber"]
    )


def _keep(event):
    CALLS.append(event["Records"])
    path = os.environ.get("RECORD_FILE")
    if path:
        with open(path, "a") as f:
            line = {"records": event["Records"], "run": os.environ.get("RUN_ID", str(os.getpid()))}
            f.write(json.dumps(line) + "\n")
    delay = float(os.environ.get("SLEEP_SECONDS", "0"))
    if delay:
        time.sleep(delay)


def record(event, context):
    """Keeps the records; always succeeds."""
    _keep(event)


def poison(event, context):
    """Fails the whole batch while it holds a record whose body says poison."""
    _keep(event)
    if any(body(r).get("poison") for r in event["Records"]):
        raise ValueError("poison record in batch")


def fail(event, context):
    """Always fails."""
    _keep(event)
    raise RuntimeError("this handler always fails")


def report_once(event, context):
    """Reports records whose body says fail as batch item failures, the first time it sees each."""
    _keep(event)
    failures = []
    for r in event["Records"]:
        seq = sequence(r)
        if body(r).get("fail") and seq not in SEEN:
            SEEN.add(seq)
            failures.append({"itemIdentifier": seq})
    return {"batchItemFailures": failures}
