"""A Python handler run by awslambdaric (AWS's own Runtime API client) as a `provided` bootstrap."""

import os


def handler(event, context):
    print(f"ric handling {event}")
    return {
        "echo": event,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "function_name": context.function_name,
        "cwd": os.getcwd(),
        # awslambdaric sets it from GET /next's Lambda-Runtime-Trace-Id.
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
    }


def fails(event, context):
    raise ValueError("ric says no")


def whoami(event, context):
    import boto3

    return {"arn": boto3.client("sts").get_caller_identity()["Arn"]}
