"""A stock aws-lambda-powertools BatchProcessor handler: a body starting with "poison" fails its record.

Every record handled is appended to $RECORD_FILE as one JSON line: its body and receive count. Each
record takes $RECORD_SLEEP seconds. With $OVERLAP set, the first two records handled wait for each
other: the first records of two concurrent invocations, so both are inside the one processor at once;
both then fail, so each batch has a failure whichever messages the queue put in it.
"""

import contextlib
import json
import os
import threading
import time

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

# Module level, as powertools' documentation shows it: one processor per execution environment.
processor = BatchProcessor(event_type=EventType.SQS)
_overlap = threading.Barrier(2, timeout=5)
_started = []


def record_handler(record):
    with open(os.environ["RECORD_FILE"], "a") as f:
        line = {
            "body": record.body,
            "receive_count": record.attributes.approximate_receive_count,
            "message_id": record.message_id,
            "at": time.time(),
            "pid": os.getpid(),
        }
        f.write(json.dumps(line) + "\n")
    _started.append(record.message_id)
    if os.environ.get("OVERLAP") and len(_started) <= 2:
        with contextlib.suppress(threading.BrokenBarrierError):  # the other never came: go on
            _overlap.wait()
        raise ValueError("failed while another invocation shared the processor")
    time.sleep(float(os.environ.get("RECORD_SLEEP", "0")))
    if record.body.startswith("poison"):
        raise ValueError("poison message")


def handler(event, context):
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
