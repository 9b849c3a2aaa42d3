"""The example handler: an ordinary Lambda handler, runnable unchanged on AWS or under pipelined."""

import json
import logging
import os

logger = logging.getLogger()
logger.setLevel(logging.INFO)

# Module-level init runs once per (warm) execution environment, as on Lambda.
GREETING = os.environ.get("GREETING", "hello")


def lambda_handler(event, context):
    if "Records" in event:
        kinds = sorted({r.get("eventSource", "?") for r in event["Records"]})
        logger.info("%s: %d record(s) from %s", GREETING, len(event["Records"]), ", ".join(kinds))
        for record in event["Records"]:
            print(json.dumps(record)[:200])
        return {"batchItemFailures": []}
    print(f"{GREETING} from {context.function_name}: {event.get('detail-type', 'event')} at {event.get('time')}")
    return {"greeting": GREETING, "remainingMs": context.get_remaining_time_in_millis()}
