"""Handlers that report what Lambda's runtime would have given them: context, environment, trace, role.

`describe()` turns a context object into plain JSON, attribute by attribute (name, type, value; nested
objects field by field), so a test can compare pipelined's context with awslambdaric's.
"""

import json
import os
import warnings

import boto3
from aws_lambda_powertools import Tracer
from awslambdaric.lambda_context import LambdaContext as ReferenceContext

tracer = Tracer(service="fidelity")
# Made at import, as most handlers make their clients: it must see the role's credentials too.
_sts_at_init = boto3.client("sts")


def _value(value):
    if value is None or isinstance(value, str | int | float | bool):
        return {"type": type(value).__name__, "value": value}
    if isinstance(value, dict | list):
        return {"type": type(value).__name__, "value": json.loads(json.dumps(value))}
    fields = getattr(type(value), "__slots__", None) or sorted(vars(value))
    return {"type": type(value).__name__, "fields": {f: _value(getattr(value, f)) for f in fields}}


def describe(context):
    """Every attribute of a context object, and what its methods answer."""
    attributes = {
        name: _value(value)
        for name, value in vars(context).items()
        # The deadline is private and differs by the microseconds between two constructions.
        if name not in ("_epoch_deadline_time_in_ms", "_deadline")
    }
    methods = sorted(
        name for name in dir(context) if not name.startswith("_") and callable(getattr(context, name))
    )
    return {
        "attributes": attributes,
        "methods": methods,
        "w3c": context.w3c(),
        "repr": repr(context),
        "remaining_ms": context.get_remaining_time_in_millis(),
    }


def context_and_environment(event, context):
    """The context, awslambdaric's own context for the same invocation, the environment and the cwd."""
    reference = ReferenceContext(
        context.aws_request_id,
        # Invoke's ClientContext as the caller sent it (the test puts the same object in the event).
        event.get("client_context"),
        None,
        context._epoch_deadline_time_in_ms,
        context.invoked_function_arn,
        None,
    )
    return {
        "context": describe(context),
        "reference": describe(reference),
        "deadline_ms": [context._epoch_deadline_time_in_ms, reference._epoch_deadline_time_in_ms],
        "environment": dict(os.environ),
        "cwd": os.getcwd(),
    }


@tracer.capture_lambda_handler
def traced(event, context):
    """A powertools Tracer handler: appends the trace id, ARNs and any warning to $RECORD_FILE."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with tracer.provider.in_subsegment("## inner"):
            pass
    line = {
        "trace_id": os.environ.get("_X_AMZN_TRACE_ID"),
        "invoked_function_arn": context.invoked_function_arn,
        "event": event,
        "warnings": [str(w.message) for w in caught],
    }
    with open(os.environ["RECORD_FILE"], "a") as out:
        out.write(json.dumps(line) + "\n")
    return {"ok": True}


def whoami(event, context):
    """The identity the function's credentials belong to, as the handler's own boto3 sees it."""
    identity = boto3.client("sts").get_caller_identity()
    return {
        "arn": identity["Arn"],
        "at_init": _sts_at_init.get_caller_identity()["Arn"],
        "access_key": os.environ.get("AWS_ACCESS_KEY_ID"),
        "pid": os.getpid(),
    }
