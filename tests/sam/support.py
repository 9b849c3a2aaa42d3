"""SAM fixtures copied into a test's directory, with the daemon's settings, and `pipelined dev --sam`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT, DaemonProcess, free_port, wait_until

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def sam_app(directory: Path, name: str) -> Path:
    """A copy of fixture `name` in `directory`, listening on free ports; returns its template."""
    target = directory / name
    shutil.copytree(FIXTURES / name, target)
    template = target / "template.yaml"
    # The daemon's own settings live under Metadata.pipelined (CloudFormation ignores Metadata).
    template.write_text(
        template.read_text()
        + "\nMetadata:\n  pipelined:\n    state_dir: state\n    shutdown_timeout: 5s\n"
        + f"    http: {{listen: '127.0.0.1:{free_port()}'}}\n"
        + f"    api: {{listen: '127.0.0.1:{free_port()}'}}\n"
        + f"    gateway: {{listen: '127.0.0.1:{free_port()}'}}\n"
    )
    return template


def listen_port(template: Path, section: str) -> int:
    for line in template.read_text().splitlines():
        if line.strip().startswith(f"{section}: {{listen:"):
            return int(line.rsplit(":", 1)[1].strip("'} "))
    raise AssertionError(f"no {section} listener in {template}")


class SamDev(DaemonProcess):
    """`pipelined dev --sam TEMPLATE [ARGS]` (or `run --sam`) as a subprocess."""

    def __init__(self, template: Path, *arguments: str, command: str = "dev") -> None:
        self.command = command
        self.config = template
        self.env = dict(os.environ)
        self.extra_env = {}
        self.log_path = template.parent / "daemon.log"
        self.port = listen_port(template, "http")
        self.api_port = listen_port(template, "api")
        self.gateway_port = listen_port(template, "gateway")
        self.process = None
        self.arguments = list(arguments)
        self.preexec = None

    def start(self, wait_ready: bool = True) -> SamDev:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelined", self.command, "--sam", str(self.config), *self.arguments],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=ROOT,
        )
        log.close()
        if wait_ready:
            wait_until(self.ready, timeout=30, message=f"{self.command} --sam ready; log:\n{self.logs()}")
        return self

    def endpoint(self) -> str:
        return (self.config.parent / "state" / "dev-endpoint").read_text().strip()
