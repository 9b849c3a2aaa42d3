"""Handlers for the SQS and S3 tests; each appends what it saw to $RECORD_FILE as one JSON line.

A JSON body steers the SQS handler: {"sleep": S} sleeps S seconds, {"raise": true} fails the whole
batch, {"fail": true} reports that message in batchItemFailures, {"reveal": S} (on the message's first
receive) makes it visible in its queue again and then holds it S seconds, as a lapsed visibility timeout
or an SQS duplicate would hand it out a second time while this invocation still holds it.
"""

import json
import os
import threading
import time

# Invocations running now and the most seen at once (read by the in-process tests).
STATS = {"active": 0, "peak": 0}
_lock = threading.Lock()


def _save(event, context, started):
    line = {"event": event, "request_id": context.aws_request_id, "start": started, "end": time.time()}
    with open(os.environ["RECORD_FILE"], "a") as f:
        f.write(json.dumps(line) + "\n")


def _commands(record):
    try:
        body = json.loads(record.get("body", ""))
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def handler(event, context):
    started = time.time()
    with _lock:
        STATS["active"] += 1
        STATS["peak"] = max(STATS["peak"], STATS["active"])
    try:
        commands = [_commands(r) for r in event["Records"]]
        for record, command in zip(event["Records"], commands, strict=True):
            if command.get("reveal") and record["attributes"].get("ApproximateReceiveCount") == "1":
                _reveal(record)
                time.sleep(command["reveal"])  # while the queue hands the message out again
        time.sleep(max((c.get("sleep", 0) for c in commands), default=0))
        _save(event, context, started)
        if any(c.get("raise") for c in commands):
            raise RuntimeError("asked to fail")
        failed = [r["messageId"] for r, c in zip(event["Records"], commands, strict=True) if c.get("fail")]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
    finally:
        with _lock:
            STATS["active"] -= 1


def s3_handler(event, context):
    """Records S3 events; fails the batch when an object key contains "fail"."""
    _save(event, context, time.time())
    if any("fail" in r["s3"]["object"]["key"] for r in event["Records"]):
        raise RuntimeError("asked to fail")


def _reveal(record):
    import boto3

    sqs = boto3.client("sqs", region_name=record["awsRegion"])
    url = sqs.get_queue_url(QueueName=record["eventSourceARN"].rsplit(":", 1)[1])["QueueUrl"]
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0)
