"""The daemon's lifecycle: load -> start -> run until stopped (reloading on SIGHUP) -> drain -> close."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass

from pipelined import __version__
from pipelined.app.systemd import Notifier
from pipelined.aws import AwsClients
from pipelined.config import Config, DestinationConfig, EventSourceConfig, FunctionConfig, load_config
from pipelined.core.filtering import compile_patterns
from pipelined.dispatch.destinations import Destination, make_destination
from pipelined.dispatch.runner import SourceRunner
from pipelined.errors import ConfigError, PipelinedError
from pipelined.functions.function import FunctionRuntime
from pipelined.http import HttpServer
from pipelined.observe.logs import setup_logging
from pipelined.observe.metrics import Metrics
from pipelined.sources.registry import SourceContext, build_source
from pipelined.state import StateStore

log = logging.getLogger("pipelined.daemon")

# SQS sources retry through the queue's own redrive policy; everything else retries in the daemon.
UPSTREAM_RETRY_TYPES = frozenset({"sqs"})
DEFAULT_DESTINATION = DestinationConfig(destination="sqlite")


@dataclass(frozen=True, slots=True)
class _RunnerSpec:
    """What a running source was built from, to tell on reload whether it changed."""

    function: FunctionConfig
    source: EventSourceConfig


class Daemon:
    """pipelined run: every enabled event source of every function, until SIGTERM/SIGINT."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.metrics = Metrics()
        self.notifier = Notifier()
        self.functions: dict[str, FunctionRuntime] = {}
        self.runners: dict[tuple[str, str], SourceRunner] = {}
        self._specs: dict[tuple[str, str], _RunnerSpec] = {}
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._signals = 0
        self._started = False
        self.state: StateStore | None = None
        self.aws: AwsClients | None = None
        self.http: HttpServer | None = None

    # --- signals: handlers only set flags --------------------------------------------------------------

    def _on_stop_signal(self, signum: int) -> None:
        self._signals += 1
        if self._signals > 1 and signum == signal.SIGINT:
            log.error("second interrupt: exiting now without draining")
            os._exit(130)
        log.info(
            "received %s; draining (up to %.0fs)", signal.Signals(signum).name, self.config.shutdown_timeout
        )
        self._stop.set()

    def _on_reload_signal(self) -> None:
        self._reload.set()

    def request_stop(self) -> None:
        """Ask the main loop to drain and exit (what SIGTERM does)."""
        self._stop.set()

    # --- lifecycle ---------------------------------------------------------------------------------------

    async def run(self) -> int:
        """Start everything, serve until asked to stop, drain; returns the process exit code."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_stop_signal, signum)
        loop.add_signal_handler(signal.SIGHUP, self._on_reload_signal)
        try:
            try:
                await self._startup()
            except PipelinedError as exc:
                log.error("start-up failed: %s", exc)
                return 2
            self.notifier.ready(f"{len(self.runners)} event sources running")
            log.info(
                "pipelined %s running: %s; metrics on http://%s:%d/metrics",
                __version__,
                self.config.summary(),
                self.config.http.host,
                self.http.port if self.http else 0,
            )
            await self._main_loop()
            self.notifier.stopping()
            await self._drain()
        finally:
            # Always close the state store: its worker thread would otherwise keep the process alive.
            await self._close()
        log.info("stopped")
        return 0

    async def _startup(self) -> None:
        self.state = await StateStore.open(self.config.state_dir)
        self.aws = AwsClients(self.config.aws)
        http = self.config.http
        self.http = HttpServer(http.host, http.port, self.metrics.registry, self._readiness)
        try:
            await self.http.start()
        except OSError as exc:
            raise PipelinedError(f"cannot listen on {http.listen}: {exc}") from exc
        await self._apply(self.config)
        self._started = True

    def _readiness(self) -> tuple[bool, dict[str, bool]]:
        return self._started, {runner.key: runner.healthy for runner in self.runners.values()}

    async def _main_loop(self) -> None:
        interval = self.notifier.watchdog_interval
        while not self._stop.is_set():
            waiters = [asyncio.create_task(self._stop.wait()), asyncio.create_task(self._reload.wait())]
            await asyncio.wait(waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            if interval is not None:
                self.notifier.watchdog()
            if self._reload.is_set() and not self._stop.is_set():
                self._reload.clear()
                await self.reload()

    async def _drain(self) -> None:
        # Runners stop in parallel so one slow handler does not eat the others' shutdown budget.
        runners = list(self.runners.values())
        self.runners.clear()
        await asyncio.gather(*(r.stop(self.config.shutdown_timeout) for r in runners), return_exceptions=True)

    async def _close(self) -> None:
        functions = list(self.functions.values())
        await asyncio.gather(
            *(f.close(self.config.shutdown_timeout) for f in functions), return_exceptions=True
        )
        if self.http is not None:
            await self.http.stop()
        if self.aws is not None:
            await self.aws.close()
        if self.state is not None:
            await self.state.close()

    # --- building and reloading --------------------------------------------------------------------------

    def _wanted(self, config: Config) -> dict[tuple[str, str], _RunnerSpec]:
        wanted: dict[tuple[str, str], _RunnerSpec] = {}
        for name, function in config.functions.items():
            for source in function.events:
                if source.enabled:
                    assert source.name is not None
                    wanted[(name, source.name)] = _RunnerSpec(function, source)
        return wanted

    def _destination(self, function: FunctionConfig, source: EventSourceConfig) -> Destination | None:
        assert self.state is not None and self.aws is not None
        if source.type in UPSTREAM_RETRY_TYPES:
            return None
        chosen = getattr(source, "on_failure", None) or function.on_failure or DEFAULT_DESTINATION
        return make_destination(chosen, self.state, self.aws)

    def _runner(self, runtime: FunctionRuntime, spec: _RunnerSpec, config: Config) -> SourceRunner:
        assert self.state is not None and self.aws is not None
        ctx = SourceContext(runtime.name, config, self.state, self.aws, self.metrics)
        source = build_source(spec.source, ctx)
        patterns = getattr(spec.source, "filter_patterns", None)
        return SourceRunner(
            runtime,
            source,
            self.metrics.for_source(runtime.name, source.name),
            self._destination(spec.function, spec.source),
            compile_patterns(patterns) if patterns else None,
        )

    async def _apply(self, config: Config) -> None:
        """Make the running runners match `config`: stop removed/changed ones, start new/changed ones."""
        wanted = self._wanted(config)
        # New AWS or MQTT connection settings reach every source: restart them all.
        connections_changed = (config.aws, config.mqtt) != (self.config.aws, self.config.mqtt)
        changed_functions = {
            name
            for name, fn in config.functions.items()
            if connections_changed
            or name not in self.functions
            or _without_events(self.functions[name].config) != _without_events(fn)
        }
        stale = [
            key
            for key, spec in self._specs.items()
            if key not in wanted or wanted[key] != spec or key[0] in changed_functions
        ]
        # Build everything new before stopping anything, so a handler that fails to import leaves
        # the running pipeline untouched.
        new_functions = {
            name: FunctionRuntime(
                name, config.functions[name], config.aws.region, self.metrics.for_function(name)
            )
            for name in changed_functions
        }
        for runtime in new_functions.values():
            runtime.load()
        functions = {n: f for n, f in self.functions.items() if n in config.functions} | new_functions
        to_start = [key for key in wanted if key not in self._specs or key in stale]
        previous_aws = self.aws
        if self.aws is not None and config.aws != self.config.aws:
            self.aws = AwsClients(config.aws)
        try:
            new_runners = {key: self._runner(functions[key[0]], wanted[key], config) for key in to_start}
        except BaseException:
            self.aws = previous_aws
            raise
        # Process isolation: provisioned workers start (and the handler is proven to import) here.
        await _start_functions(list(new_functions.values()))
        retired = [f for n, f in self.functions.items() if n not in config.functions or n in new_functions]
        if stale:
            log.info("stopping %d event source(s): %s", len(stale), ", ".join(f"{f}/{s}" for f, s in stale))
            old = [self.runners.pop(key) for key in stale if key in self.runners]
            await asyncio.gather(*(r.stop(config.shutdown_timeout) for r in old), return_exceptions=True)
            for key in stale:
                self._specs.pop(key, None)
        self.functions = functions
        if previous_aws is not None and previous_aws is not self.aws:
            await previous_aws.close()  # every runner using it was restarted above
        # After their runners drained: a removed or changed function's workers have nothing in flight.
        await asyncio.gather(*(f.close(config.shutdown_timeout) for f in retired), return_exceptions=True)
        for key, runner in new_runners.items():
            await runner.start()
            self.runners[key] = runner
            self._specs[key] = wanted[key]
            log.info("started %s", runner.key)
        self.config = config

    async def reload(self) -> bool:
        """Re-read the config file and apply it; an invalid file leaves the pipeline as it was."""
        self.notifier.reloading()
        log.info("reloading %s", self.config.source_path)
        try:
            config = load_config(self.config.source_path)
            await self._apply(config)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload rejected: %s", problem)
            self.notifier.ready("reload rejected; running the previous configuration")
            return False
        except PipelinedError as exc:
            log.error("reload rejected: %s", exc)
            self.notifier.ready("reload rejected; running the previous configuration")
            return False
        setup_logging(config.logging.level, config.logging.format)
        self.notifier.ready(f"reloaded; {len(self.runners)} event sources running")
        log.info("reloaded: %s", config.summary())
        return True


async def _start_functions(runtimes: list[FunctionRuntime]) -> None:
    """Start new functions; if one cannot (its handler fails to initialise), stop them all and raise."""
    results = await asyncio.gather(*(r.start() for r in runtimes), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        await asyncio.gather(*(r.close(0) for r in runtimes), return_exceptions=True)
        raise failed[0]


def _without_events(function: FunctionConfig) -> FunctionConfig:
    return function.model_copy(update={"events": []})


def run_daemon(config: Config) -> int:
    """Run the daemon on a loaded config until it stops; returns the exit code."""
    setup_logging(config.logging.level, config.logging.format)
    daemon = Daemon(config)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(daemon.run())
    return 130
