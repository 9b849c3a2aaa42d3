"""Handlers for the MQTT and MinIO tests; they append what they saw to $RECORD_FILE as JSON lines."""

import json
import os
import time


def _write(**line):
    with open(os.environ["RECORD_FILE"], "a") as f:
        f.write(json.dumps(line) + "\n")


def _payloads(event):
    return [r.get("payload") for r in event["Records"]]


def record(event, context):
    """Records every record it is given."""
    for r in event["Records"]:
        _write(phase="done", payload=r.get("payload"), record=r, pid=os.getpid())


def fail_poison(event, context):
    """Fails every batch that holds a payload containing "poison"."""
    _write(phase="called", payloads=_payloads(event))
    if any("poison" in (p or "") for p in _payloads(event)):
        raise ValueError("poison message")


def slow(event, context):
    """Sleeps $SLEEP_SECONDS between writing "start" and "end" (to be killed in between)."""
    _write(phase="start", payloads=_payloads(event), pid=os.getpid())
    time.sleep(float(os.environ.get("SLEEP_SECONDS", "0")))
    _write(phase="end", payloads=_payloads(event), pid=os.getpid())
