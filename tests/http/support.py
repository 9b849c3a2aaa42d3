"""Helpers for the Lambda API tests: boto3 clients pointed at a daemon."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from tests.support import DaemonProcess


def lambda_client(
    daemon: DaemonProcess, access_key: str = "testing", secret: str = "testing", **config: Any
) -> Any:
    """boto3's Lambda client pointed at the daemon's API, no retries (tests see every answer)."""
    return boto3.client(
        "lambda",
        endpoint_url=f"http://127.0.0.1:{daemon.api_port}",
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}, read_timeout=30, **config),
    )
