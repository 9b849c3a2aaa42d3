"""Test helpers: waiting on conditions with a deadline, and the daemon as a real subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from pipelined.functions.function import Function
from pipelined.invoke.service import InvokeResult, InvokeService

ROOT = Path(__file__).resolve().parent.parent
TEST_FUNCTIONS = Path(__file__).resolve().parent / "handlers"


def _ephemeral_ports_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Listening ports come from below the kernel's ephemeral range. A port the kernel hands out for bind(0)
# is ephemeral: between this check and the daemon's own bind, an outgoing connection (to moto,
# PostgreSQL, a peer daemon) may take it as its local port, and the daemon then fails to start with
# "address already in use" (seen in the cluster tests). No outgoing connection takes a port below the
# range; each port is handed out once per test session, so two listeners never share one. Under
# pytest-xdist each worker takes its own slice of the range, so two workers never hand out one port.
def _port_slice() -> tuple[int, int]:
    low, high = 10000, max(11000, _ephemeral_ports_start())
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    worker = int((os.environ.get("PYTEST_XDIST_WORKER") or "gw0").removeprefix("gw") or 0)
    size = (high - low) // max(workers, 1)
    return low + worker * size, low + (worker + 1) * size


_PORTS_START, _PORTS_END = _port_slice()
_next_port = _PORTS_START + (os.getpid() * 7919) % (_PORTS_END - _PORTS_START)


def free_port() -> int:
    """A loopback TCP port nobody listens on now, outside the ephemeral range."""
    global _next_port  # noqa: PLW0603 - the session's cursor over the port range
    for _ in range(_PORTS_END - _PORTS_START):
        port = _next_port
        _next_port = _PORTS_START + (_next_port + 1 - _PORTS_START) % (_PORTS_END - _PORTS_START)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, message: str = "") -> Any:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
        time.sleep(0.05)


async def until(
    predicate: Callable[[], Any | Awaitable[Any]], timeout: float = 10.0, message: str = ""
) -> Any:
    """Async `wait_until`: the predicate may be a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
        await asyncio.sleep(0.05)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The JSON lines a handler wrote; a last line still being written (no newline yet) is left out."""
    if not path.exists():
        return []
    text = path.read_text()
    complete = text if text.endswith("\n") else text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]


# PIPELINED_TEST_ISOLATION=inline runs every test that writes a config with inline isolation (the
# opt-in); unset, configs get pipelined's default, process.
TEST_ISOLATION = os.environ.get("PIPELINED_TEST_ISOLATION") or None


def write_config(directory: Path, functions: dict[str, Any], **top: Any) -> Path:
    """Write a config file whose functions default to the test handlers."""
    config: dict[str, Any] = {
        "state_dir": str(directory / "state"),
        "shutdown_timeout": "10s",
        "http": {"listen": f"127.0.0.1:{free_port()}"},
        "api": {"listen": f"127.0.0.1:{free_port()}"},
        **({"isolation": TEST_ISOLATION} if TEST_ISOLATION else {}),
        **top,
        "functions": {},
    }
    for name, fn in functions.items():
        config["functions"][name] = {"code": str(TEST_FUNCTIONS), "timeout": "10s", **fn}
    path = directory / "pipelined.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def forward_environment(config: Path, env: dict[str, Any]) -> None:
    """Hand a test's daemon variables to its functions as well (unless PIPELINED_TEST_ISOLATION=inline).

    Tests give variables (RECORD_FILE, ...) to the daemon; a worker process sees only its function's
    `environment` (that is the point of isolation), so the harness copies them there.
    """
    if TEST_ISOLATION == "inline" or not config.is_file():
        return
    try:
        data = yaml.safe_load(config.read_text())
    except yaml.YAMLError:
        return  # a test of how an invalid file is rejected
    functions = data.get("functions") if isinstance(data, dict) else None
    if not isinstance(functions, dict) or not (env or data.get("x-test-forwarded-environment")):
        return
    # Remembered (in a key the loader ignores) so a later daemon's values replace an earlier one's.
    marker = "x-test-forwarded-environment"
    previous = set(data.get(marker) or [])
    forwarded = {k: str(v) for k, v in env.items()}
    for function in functions.values():
        if isinstance(function, dict):
            own = {k: v for k, v in (function.get("environment") or {}).items() if k not in previous}
            function["environment"] = {**forwarded, **own}
    data[marker] = sorted(forwarded)
    config.write_text(yaml.safe_dump(data, sort_keys=False))


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `python -m pipelined ARGS` and capture its output."""
    if env and "-c" in args[:-1]:
        forward_environment(Path(args[args.index("-c") + 1]), env)
    return subprocess.run(
        [sys.executable, "-m", "pipelined", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        cwd=ROOT,
    )


class DaemonProcess:
    """`pipelined run` as a subprocess, with its log in a file."""

    # The subcommand that runs the pipeline: "run", or "dev" for the embedded AWS server.
    command = "run"

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.env = {**os.environ, **(env or {})}
        self.extra_env = dict(env or {})
        self.log_path = config.parent / "daemon.log"
        settings = yaml.safe_load(config.read_text())
        self.port = int(settings["http"]["listen"].rsplit(":", 1)[1])
        api = (settings.get("api") or {}).get("listen", "127.0.0.1:9001")
        self.api_port = int(api.rsplit(":", 1)[1]) if api else None
        self.process: subprocess.Popen[bytes] | None = None
        # Extra command-line arguments (e.g. --reset-state) and a function run in the child before exec.
        self.arguments: list[str] = []
        self.preexec: Callable[[], None] | None = None

    def start(self, wait_ready: bool = True) -> DaemonProcess:
        forward_environment(self.config, self.extra_env)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipelined", self.command, "-c", str(self.config), *self.arguments],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=ROOT,
            preexec_fn=self.preexec,  # noqa: PLW1509 - only setrlimit, which is async-signal-safe
        )
        log.close()
        if wait_ready:
            wait_until(self.ready, timeout=30, message=f"pipelined {self.command} ready; log:\n{self.logs()}")
        return self

    def logs(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"daemon exited with {self.process.returncode}; log:\n{self.logs()}")
        try:
            return self.get("/readyz")[0] == 200
        except OSError:
            return False

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample of /metrics (0 when absent)."""
        _, text = self.get("/metrics")
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return float(sample.value)
        return 0.0

    def send_signal(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            forward_environment(self.config, self.extra_env)  # the test may have rewritten the file
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def mosquitto_binary() -> str:
    for candidate in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto"):
        if Path(candidate).exists():
            return candidate
    raise RuntimeError("mosquitto is not installed (the README's test command installs it)")


class MosquittoBroker:
    """A mosquitto process on a free loopback port with its own config and persistence file."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {directory}/\n"
            # Started as root, mosquitto drops to the "mosquitto" user, which cannot write its
            # persistence file into pytest's root-only temporary directory.
            + ("user root\n" if os.geteuid() == 0 else "")
            + "autosave_interval 1\n"
            "max_queued_messages 10000\n"
        )

    def start(self) -> None:
        log = (self.directory / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([mosquitto_binary(), "-c", str(self.config)], stdout=log, stderr=log)
        log.close()

        def accepting() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                return False

        wait_until(accepting, timeout=10, message=f"mosquitto on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # mosquitto saves its persistence file on SIGTERM
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


async def invoke(function: Function, event: Any, request_id: str | None = None) -> InvokeResult:
    """Invoke a loaded function once through the invoke service, as `pipelined invoke` does."""
    return await InvokeService().invoke(function, event, request_id=request_id)
