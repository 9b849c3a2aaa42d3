from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest_asyncio

from pipelined.config import FunctionConfig
from pipelined.functions.function import Function
from pipelined.observe.metrics import Metrics
from tests.support import TEST_FUNCTIONS

NODE = TEST_FUNCTIONS / "node"
PROVIDED = TEST_FUNCTIONS / "provided"


@pytest_asyncio.fixture(loop_scope="function")
async def metrics() -> Metrics:
    return Metrics()


@pytest_asyncio.fixture(loop_scope="function")
async def function(metrics: Metrics) -> AsyncIterator[Callable[..., Function]]:
    """Factory: a loaded Runtime API Function (Node.js by default); closed at teardown."""
    made: list[Function] = []

    def make(
        handler: str, code: Path, runtime: str = "nodejs20.x", name: str = "fn", **options: Any
    ) -> Function:
        config = FunctionConfig(handler=handler, code=code, runtime=runtime, isolation="process", **options)
        made.append(fn := Function(name, config, "eu-west-1", metrics.for_function(name)))
        fn.load()
        return fn

    yield make
    for fn in made:
        await fn.close(0)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return float(metrics.registry.get_sample_value(name, {"function": "fn", **labels}) or 0.0)
