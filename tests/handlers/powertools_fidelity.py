"""Unchanged aws-lambda-powertools handlers, as a user would write them (tests/functions/test_powertools.py).

`logged` logs through a module-level `Logger` with `inject_lambda_context` (two lines per record, with
the worker's pid and the record's body). `parsed` validates its event with the powertools Parser model
named by $MODEL (MqttEvent: the model below) and appends {"model", "ok", "error"} to $RECORD_FILE.
"""

import json
import os
import time

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser import models as powertools_models
from pydantic import BaseModel

logger = Logger(service="fidelity")


@logger.inject_lambda_context
def logged(event, context):
    for record in event["Records"]:
        logger.info("handling", extra={"pid": os.getpid(), "body": record["body"]})
        time.sleep(0.02)  # long enough for other invocations to run meanwhile
        logger.info("handled", extra={"pid": os.getpid(), "body": record["body"]})
    return {"batchItemFailures": []}


class MqttRecord(BaseModel):
    """pipelined's MQTT record (docs/sources-mqtt.md): powertools has no model for it."""

    topic: str
    payload: str
    qos: int
    retain: bool
    messageId: str  # noqa: N815 - the record's own key
    receivedAt: str  # noqa: N815
    userProperties: dict[str, str | list[str]] = {}  # noqa: N815


class MqttEvent(BaseModel):
    Records: list[MqttRecord]


def parsed(event, context):
    name = os.environ["MODEL"]
    model = MqttEvent if name == "MqttEvent" else getattr(powertools_models, name)
    line = {"model": name, "ok": True, "error": None}
    try:
        parse(event=event, model=model)
    except ValidationError as exc:
        line = {"model": name, "ok": False, "error": str(exc)[:2000]}
    with open(os.environ["RECORD_FILE"], "a") as f:
        f.write(json.dumps(line) + "\n")
    if "httpMethod" in event or "rawPath" in event:  # through the gateway: answer its request
        return {"statusCode": 200, "body": json.dumps(line)}
    return None
