"""Fixtures for the config tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory with a function code dir (fn/app.py) and a layer holding a dotted package."""
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("raise SystemExit('handler modules must not be imported')\n")
    (tmp_path / "layer" / "pkg").mkdir(parents=True)
    (tmp_path / "layer" / "pkg" / "__init__.py").write_text("")
    (tmp_path / "layer" / "pkg" / "mod.py").write_text("def handle(event, context): ...\n")
    (tmp_path / "certs").mkdir()
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / "certs" / name).write_text("x")
    return tmp_path
