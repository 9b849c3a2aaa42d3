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
    }


def fails(event, context):
    raise ValueError("ric says no")
