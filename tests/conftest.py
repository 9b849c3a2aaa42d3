from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import DaemonProcess


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Factory: start `pipelined run` on a config file; every daemon is stopped at teardown."""
    started: list[DaemonProcess] = []

    def start(config: Path, env: dict[str, Any] | None = None, wait_ready: bool = True) -> DaemonProcess:
        process = DaemonProcess(config, {k: str(v) for k, v in (env or {}).items()})
        started.append(process)
        return process.start(wait_ready=wait_ready)

    yield start
    for process in started:
        process.stop()
