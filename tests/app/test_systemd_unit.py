"""The shipped unit file is valid for systemd and keeps its promises."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelined.config import Config
from tests.support import ROOT

UNIT = ROOT / "systemd" / "pipelined.service"


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    executable = Path(sys.executable).parent / "pipelined"
    text = UNIT.read_text().replace("/opt/pipelined/bin/pipelined", str(executable))
    copy = tmp_path / "pipelined.service"
    copy.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_unit_is_notify_hardened_and_outlasts_the_shutdown_budget() -> None:
    service = unit()["Service"]
    assert service["Type"] == "notify"
    assert service["WatchdogSec"] and service["StateDirectory"] == "pipelined"
    assert service["User"] == "pipelined" and service["Restart"] == "on-failure"
    for setting in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert service[setting] == "yes"
    assert service["ProtectSystem"] == "strict"
    timeout_stop = int(service["TimeoutStopSec"].rstrip("s"))
    default_shutdown = Config.model_fields["shutdown_timeout"].default
    assert timeout_stop > default_shutdown
