"""Handlers for the EventBridge tests: each appends what it received to $RECORD_FILE as one JSON line.

`record` also says whether powertools' Parser accepts the event as an `EventBridgeModel` and what its
`EventBridgeEvent` data class reads; `gated` first waits for the file $GATE_FILE to exist.
"""

import json
import os
import time

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel


def _write(line):
    with open(os.environ["RECORD_FILE"], "a") as f:
        f.write(json.dumps(line) + "\n")


def record(event, context):
    line = {"function": context.function_name, "event": event, "request_id": context.aws_request_id}
    if isinstance(event, dict) and "detail-type" in event:
        try:
            model = parse(event=event, model=EventBridgeModel)
        except ValidationError as exc:
            line["model_error"] = str(exc)
        else:
            line["model"] = {"id": model.id, "detail_type": model.detail_type, "source": model.source}
        data = EventBridgeEvent(event)
        line["data_class"] = {"detail_type": data.detail_type, "detail": data.detail, "time": data.time}
    _write(line)
    return {"ok": True}


def fail(event, context):
    _write({"function": context.function_name, "event": event, "failed": True})
    raise RuntimeError(f"cannot handle {event.get('detail', {}).get('n')}")


def gated(event, context):
    deadline = time.monotonic() + 8
    while not os.path.exists(os.environ["GATE_FILE"]) and time.monotonic() < deadline:
        time.sleep(0.02)
    _write({"function": context.function_name, "id": event["id"], "n": event["detail"]["n"]})
