"""The real components the suite runs against are up and answering."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiomqtt
import boto3


def test_moto_server_speaks_sqs(aws: str) -> None:
    sqs = boto3.client("sqs", endpoint_url=aws, region_name="us-east-1")
    url = sqs.create_queue(QueueName="probe")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "hello"


def test_moto_is_reset_between_tests(aws: str) -> None:
    sqs = boto3.client("sqs", endpoint_url=aws, region_name="us-east-1")
    assert "QueueUrls" not in sqs.list_queues()


async def test_private_mosquitto_broker_round_trip(mosquitto: Callable[..., Any]) -> None:
    broker = mosquitto()
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="probe") as client:
        await client.subscribe("probe/#", qos=1)
        await client.publish("probe/x", b"hi", qos=1)
        async with asyncio.timeout(5):
            async for message in client.messages:
                assert message.payload == b"hi"
                break
