"""Run as an unprivileged user by test_secrets.py: two process-isolated functions, one trying to steal.

This process plays the daemon (it holds both functions' environments and runs their worker pools).

Prints one JSON object: the holder's pids and what the thief managed to read. The secret is given only to
the holder; it is started first, so the thief's worker is forked from a zygote that has served it.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys

from pipelined.config import FunctionConfig
from pipelined.functions.function import Function
from pipelined.invoke.service import InvokeService
from tests.support import TEST_FUNCTIONS


async def probe() -> dict[str, object]:
    service = InvokeService()

    def function(name: str, handler: str, environment: dict[str, str]) -> Function:
        config = FunctionConfig(
            handler=f"secrets_handlers.{handler}",
            code=TEST_FUNCTIONS,
            timeout=30,
            isolation="process",
            environment=environment,
        )
        return Function(name, config, "us-east-1")

    holder = function("holder", "holder", {"HOLDER_SECRET": f"pipelined-secret-{secrets.token_hex(16)}"})
    thief = function("thief", "thief", {"THIEF_MARKER": f"pipelined-marker-{secrets.token_hex(16)}"})
    try:
        for fn in (holder, thief):
            fn.load()
        await holder.start()
        held = await service.invoke(holder, {})
        assert held.error is None, held.error
        await thief.start()
        targets = {"holder": held.value["pid"], "zygote": held.value["zygote"], "daemon": os.getpid()}
        stolen = await service.invoke(thief, {"targets": targets})
        assert stolen.error is None, stolen.error
        return {"holder": held.value, "thief": stolen.value}
    finally:
        await thief.close()
        await holder.close()


if __name__ == "__main__":
    json.dump(asyncio.run(probe()), sys.stdout)
