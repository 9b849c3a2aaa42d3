"""Handlers of the tracing tests: they answer with the trace header Lambda gave them."""

import os


def trace(event, context):
    return {"statusCode": 200, "body": os.environ.get("_X_AMZN_TRACE_ID", "")}


def fail(event, context):
    raise ValueError(f"traced failure in {os.environ.get('_X_AMZN_TRACE_ID', '')}")
