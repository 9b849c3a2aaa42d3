"""Helpers for the HTTP tests: requests to the gateway, and boto3 clients pointed at the Lambda API."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from tests.support import DaemonProcess


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    port: int,
    method: str,
    path: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    timeout: float = 10,
) -> Reply:
    """One request on a new connection; `path` goes on the request line exactly as given."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers or []:
            connection.putheader(name, value)
        if body or method in ("POST", "PUT", "PATCH"):
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body or None)
        response = connection.getresponse()
        return Reply(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


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
