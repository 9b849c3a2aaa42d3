"""The daemon's one account id: `aws.account_id`, else the endpoint's own, else 000000000000."""

from __future__ import annotations

import logging

import pytest

from pipelined.aws import AwsClients
from pipelined.config import AwsConfig
from tests.support import free_port


async def test_account_id_is_the_endpoints_own(aws: str) -> None:
    clients = AwsClients(AwsConfig(endpoint_url=aws))
    try:
        assert await clients.account_id() == "123456789012"  # moto's
    finally:
        await clients.close()


async def test_configured_account_id_wins_and_asks_nobody() -> None:
    clients = AwsClients(AwsConfig(endpoint_url=f"http://127.0.0.1:{free_port()}", account_id="111122223333"))
    try:
        assert await clients.account_id() == "111122223333"
    finally:
        await clients.close()


async def test_unreachable_endpoint_falls_back_with_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    clients = AwsClients(AwsConfig(endpoint_url=f"http://127.0.0.1:{free_port()}"))
    try:
        with caplog.at_level(logging.WARNING, logger="pipelined.aws"):
            assert await clients.account_id() == "000000000000"
            assert await clients.account_id() == "000000000000"  # asked once
    finally:
        await clients.close()
    (line,) = [r.getMessage() for r in caplog.records if r.name == "pipelined.aws"]
    assert line.startswith("cannot ask the endpoint for its account id (") and "using 000000000000" in line
