"""Tests for the event source models and their destinations."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipelined.config import DestinationConfig


def test_destination_kind_follows_its_address() -> None:
    kinds = {
        "sqlite": "sqlite",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/q": "sqs",
        "http://localhost:4566/000000000000/q.fifo": "sqs",
        "arn:aws:sqs:eu-west-1:123456789012:q": "sqs",
        "arn:aws:sns:eu-west-1:123456789012:t": "sns",
    }
    for destination, kind in kinds.items():
        assert DestinationConfig(destination=destination).kind == kind
    for bad in ("", "sqs", "arn:aws:lambda:eu-west-1:123456789012:function:f", "ftp://x/1/q"):
        with pytest.raises(ValidationError):
            DestinationConfig(destination=bad)
