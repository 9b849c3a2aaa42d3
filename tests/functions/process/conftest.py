from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest_asyncio

from pipelined.config import FunctionConfig
from pipelined.functions.function import Function
from pipelined.observe.metrics import Metrics
from tests.support import TEST_FUNCTIONS


@pytest_asyncio.fixture(loop_scope="function")
async def metrics() -> Metrics:
    return Metrics()


@pytest_asyncio.fixture(loop_scope="function")
async def isolated(metrics: Metrics) -> AsyncIterator[Callable[..., Function]]:
    """Factory: a loaded `isolation: process` Function of isolation_handlers; closed at teardown."""
    made: list[Function] = []

    def make(handler: str, name: str = "fn", **options: Any) -> Function:
        config = FunctionConfig(
            handler=f"isolation_handlers.{handler}", code=TEST_FUNCTIONS, isolation="process", **options
        )
        runtime = Function(name, config, "eu-west-1", metrics.for_function(name))
        runtime.load()
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        await runtime.close(0)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return float(metrics.registry.get_sample_value(name, {"function": "fn", **labels}) or 0.0)
