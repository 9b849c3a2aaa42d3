"""A private PostgreSQL database per test on the server at 127.0.0.1:5432 (the Makefile starts one)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

SERVER = os.environ.get("PIPELINED_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def _admin(sql: str) -> None:
    subprocess.run(
        ["psql", f"{SERVER}/postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a new, empty database; dropped (with its connections) at teardown."""
    name = f"pipelined_test_{uuid.uuid4().hex[:12]}"
    _admin(f"CREATE DATABASE {name}")
    yield f"{SERVER}/{name}"
    _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
