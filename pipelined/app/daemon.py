"""The daemon's lifecycle: load -> start -> run until stopped (reloading on SIGHUP) -> drain -> close.

Start-up opens, in order: the state store, the AWS clients, the ops HTTP listener, then the functions and
their event sources (app/assembly.py builds them, app/reload.py decides what a config change touches),
then the async invocation queue and the Lambda API (app/api.py).
Shutdown stops the Lambda API listener and the event sources first, so in-flight invocations finish
while their messages stay invisible, then the async queue, the functions' workers, the listener, the
AWS clients and last the state store, which writes the final checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import psycopg

from pipelined import __version__
from pipelined.app.api import ApiFrontDoor
from pipelined.app.assembly import build_function, build_runner
from pipelined.app.observability import Observability
from pipelined.app.reload import RunnerKey, RunnerSpec, plan_reload
from pipelined.app.status import DaemonView, snapshot
from pipelined.app.systemd import Notifier
from pipelined.app.watch import Watcher
from pipelined.aws import AwsClients
from pipelined.config import Config, load_config
from pipelined.config.cluster import default_member_id
from pipelined.config.gateway import routes_of
from pipelined.core.lambda_errors import LambdaError
from pipelined.core.routes import RouteTable
from pipelined.dispatch.runner import SourceRunner
from pipelined.errors import ConfigError, PipelinedError
from pipelined.functions.function import Function
from pipelined.http.gateway import Gateway
from pipelined.http.ops import HttpServer
from pipelined.invoke.service import InvokeService
from pipelined.observe.cluster_metrics import ClusterMetrics
from pipelined.observe.logs import setup_logging
from pipelined.observe.metrics import Metrics
from pipelined.state import StateStore

log = logging.getLogger("pipelined.daemon")

STATE_CHECK_INTERVAL = 1.0


class Daemon:
    """pipelined run: every enabled event source of every function, until SIGTERM/SIGINT."""

    def __init__(
        self,
        config: Config,
        reset_state: bool = False,
        watch: bool = False,
        loader: Callable[[], Config] | None = None,
    ) -> None:
        self.config = config
        self.reset_state = reset_state
        # What a reload (SIGHUP) reads: the YAML file by default, a SAM template with `run --sam`.
        self.loader = loader or (lambda: load_config(self.config.source_path))
        # Hot reload (app/watch.py): follow the code directories and the config file.
        self.watch = watch
        self._watching: asyncio.Task[None] | None = None
        # A config reload and a code refresh never interleave.
        self._changing = asyncio.Lock()
        # 1 when checkpoints could not be written before the shutdown timeout.
        self.exit_code = 0
        self.metrics = Metrics()
        # The log store, EMF exporter, tracer and scrape-time gauges (app/observability.py).
        self.observability = Observability(self.metrics)
        self.notifier = Notifier()
        self.service = InvokeService(self.metrics)
        self.functions: dict[str, Function] = {}
        self.runners: dict[RunnerKey, SourceRunner] = {}
        self._specs: dict[RunnerKey, RunnerSpec] = {}
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._signals = 0
        self._started = False
        self._started_at = time.time()
        self.state: StateStore | None = None
        self.aws: AwsClients | None = None
        self.http: HttpServer | None = None
        # The api/http_api/function_url routes; it binds gateway.listen once there is a route.
        self.gateway = Gateway(self.service, self.metrics)
        self.api: ApiFrontDoor | None = None

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
            # Start-up: stores and listener first, then functions and sources.
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
            self.on_ready()
            if self.watch:
                logging.getLogger("watchfiles").setLevel(logging.WARNING)  # "N changes detected" per save
                watcher = Watcher(lambda: self.config, self.reload, self.refresh)
                self._watching = asyncio.create_task(watcher.run(self._stop), name="watch")
            # Main loop: watchdog pings and reloads until a stop signal.
            await self._main_loop()
            # Shutdown: sources drain first (in-flight invocations finish), then everything else closes.
            self.notifier.stopping()
            await self._drain()
        finally:
            if self._watching is not None and not self._watching.done():
                self._stop.set()  # the watcher ends with the daemon, however run() ends
                await asyncio.gather(self._watching, return_exceptions=True)
            # Always close the state store: its worker thread would otherwise keep the process alive.
            await self._close()
        log.info("stopped")
        return self.exit_code

    async def _startup(self) -> None:
        self.state = await StateStore.open(
            self.config.state_dir, reset=self.reset_state, url=self.config.state.url
        )
        if self.state.shared:
            cluster = self.config.cluster
            await self.state.join_cluster(
                cluster.member_id or default_member_id(),
                cluster.lease_duration,
                cluster.renew_every,
                ClusterMetrics(self.metrics.registry),
            )
        self.aws = AwsClients(self.config.aws)
        http = self.config.http
        self.observability.start(self.config)
        self.http = HttpServer(
            http.host,
            http.port,
            self.metrics.registry,
            self._readiness,
            status=self._status,
            before_scrape=lambda: self.observability.refresh_gauges(self.state, self.functions),
            log_store=self.observability.log_store,
        )
        try:
            await self.http.start()
        except OSError as exc:
            raise PipelinedError(f"cannot listen on {http.listen}: {exc}") from exc
        await self._apply(self.config, initial=True)
        self.api = ApiFrontDoor(lambda: self.config, self.service, self.state, self._aws, self.metrics)
        await self.api.start()
        self._started = True

    def _aws(self) -> AwsClients:
        assert self.aws is not None
        return self.aws

    def _readiness(self) -> tuple[bool, dict[str, bool], bool]:
        state_ok = self.state is not None and self.state.healthy
        if self.state is not None and self.state.cluster is not None:
            state_ok = state_ok and self.state.cluster.reachable
        return self._started, {runner.key: runner.healthy for runner in self.runners.values()}, state_ok

    async def _status(self) -> dict[str, Any]:
        view = DaemonView(
            started_at=self._started_at,
            ready=self._ready(),
            functions=self.functions,
            runners=self.runners,
            specs=self._specs,
            state=self.state,
            registry=self.metrics.registry,
        )
        return await snapshot(view)

    def _ready(self) -> bool:
        started, health, state_ok = self._readiness()
        return started and state_ok and all(health.values())

    async def _main_loop(self) -> None:
        interval = self.notifier.watchdog_interval
        # The state file is checked this often: deleted (restored from the open database) or replaced.
        tick = STATE_CHECK_INTERVAL if interval is None else min(interval, STATE_CHECK_INTERVAL)
        while not self._stop.is_set():
            waiters = [asyncio.create_task(self._stop.wait()), asyncio.create_task(self._reload.wait())]
            await asyncio.wait(waiters, timeout=tick, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            if interval is not None:
                self.notifier.watchdog()
            if self.state is not None:
                await self.state.check()
            if self._reload.is_set() and not self._stop.is_set():
                self._reload.clear()
                await self.reload()

    async def _drain(self) -> None:
        # Runners stop in parallel so one slow handler does not eat the others' shutdown budget.
        runners = list(self.runners.values())
        self.runners.clear()
        timeout = self.config.shutdown_timeout
        stopping = [self.gateway.stop(timeout), *(r.stop(timeout) for r in runners)]
        if self.api is not None:
            stopping.append(self._stop_api(self.api))
        await asyncio.gather(*stopping, return_exceptions=True)

    async def _stop_api(self, api: ApiFrontDoor) -> None:
        # Requests in flight finish first; they may still put events on the queue.
        await api.stop_listening()
        await api.stop_queue(self.config.shutdown_timeout)

    async def _close(self) -> None:
        # Reverse order of start-up: workers, listener, AWS clients, and the state store last.
        if self.api is not None:  # a no-op after a normal drain; after a failed start-up, needed
            await self._stop_api(self.api)
        functions = list(self.functions.values())
        await asyncio.gather(
            *(f.close(self.config.shutdown_timeout) for f in functions), return_exceptions=True
        )
        await self.gateway.stop(0)
        if self.http is not None:
            await self.http.stop()
        await self.observability.close()
        if self.aws is not None:
            await self.aws.close()
        if self.state is not None:
            await self._close_state(self.state)

    @staticmethod
    async def _final_writes(state: StateStore) -> None:
        # A cluster member writes its fenced checkpoints, then hands its leases over at once.
        await state.leave_cluster()
        await state.checkpoints.flush()

    async def _close_state(self, state: StateStore) -> None:
        # The last checkpoints get what is left of the shutdown budget: a full or broken disk must not
        # keep the daemon from stopping (their records are redelivered after the restart).
        try:
            await asyncio.wait_for(asyncio.shield(self._final_writes(state)), self.config.shutdown_timeout)
        except (TimeoutError, sqlite3.Error, psycopg.Error) as exc:
            log.error(
                "%d checkpoint(s) could not be written to %s before shutdown (%s); their records are "
                "delivered again after the restart",
                state.checkpoints.unwritten,
                state.path,
                exc or "shutdown_timeout passed",
            )
            self.exit_code = 1
        await state.close(flush=False)

    # --- applying a config ------------------------------------------------------------------------------

    async def _apply(self, config: Config, initial: bool = False) -> None:
        """Make the running functions and runners match `config` (app/reload.py decides what changes)."""
        assert self.state is not None and self.aws is not None
        loaded = {name: fn.config for name, fn in self.functions.items()}
        plan = plan_reload(None if initial else self.config, config, loaded, self._specs)
        # Build everything new before stopping anything, so a handler that fails to import leaves
        # the running pipeline untouched.
        previous_aws = self.aws
        if plan.aws_changed:
            self.aws = AwsClients(config.aws)
        try:
            # One account id in every ARN (asked of the endpoint once per set of clients).
            account = await self.aws.account_id()
            new_functions = {
                name: build_function(name, config, self.metrics, account, self._aws) for name in plan.build
            }
            for function in new_functions.values():
                active = function.config.tracing == "active"
                function.tracer = self.observability.tracer_for(config) if active else None
                function.load()
        except BaseException:
            self.aws = previous_aws
            raise
        functions = {n: f for n, f in self.functions.items() if n in config.functions} | new_functions
        try:
            new_runners = {
                key: build_runner(
                    functions[key[0]], spec.source, config, self.service, self.state, self.aws, self.metrics
                )
                for key, spec in plan.start
            }
        except BaseException:
            self.aws = previous_aws
            raise
        # Process isolation: provisioned workers start (and the handler is proven to import) here.
        await _start_functions(list(new_functions.values()))
        retired = [f for n, f in self.functions.items() if n in plan.retire]
        if plan.stop:
            log.info(
                "stopping %d event source(s): %s", len(plan.stop), ", ".join(f"{f}/{s}" for f, s in plan.stop)
            )
            old = [self.runners.pop(key) for key in plan.stop if key in self.runners]
            await asyncio.gather(*(r.stop(config.shutdown_timeout) for r in old), return_exceptions=True)
            for key in plan.stop:
                self._specs.pop(key, None)
        self.functions = functions
        self.service.replace(functions)
        # Routes move to the new functions together with the service; requests in flight keep theirs.
        await self.gateway.apply(config.gateway, RouteTable(routes_of(config.functions)))
        if self.api is not None:
            self.api.reconfigure(config)
        if previous_aws is not self.aws:
            await previous_aws.close()  # every runner using it was restarted above
        # After their runners drained: a removed or changed function's workers have nothing in flight.
        await asyncio.gather(*(f.close(config.shutdown_timeout) for f in retired), return_exceptions=True)
        for key, runner in new_runners.items():
            await runner.start()
            self.runners[key] = runner
            self._specs[key] = dict(plan.start)[key]
            log.info("started %s", runner.key)
        self.observability.apply(config)
        self.config = config

    def on_ready(self) -> None:
        """Called once everything listens and runs (dev mode prints its summary here)."""

    async def prepare(self, config: Config) -> None:
        """Called with a reloaded config before it is applied (dev mode creates its new resources)."""

    async def refresh(
        self, names: Collection[str], changed: frozenset[Path]
    ) -> dict[str, LambdaError | None]:
        """Hot reload: the named functions serve their code as saved now; each one's init error or None."""
        async with self._changing:
            functions = [self.functions[n] for n in names if n in self.functions]
            errors = await asyncio.gather(*(f.refresh(changed) for f in functions))
            return {f.name: error for f, error in zip(functions, errors, strict=True)}

    async def reload(self) -> bool:
        """Re-read the config file and apply it; an invalid file leaves the pipeline as it was."""
        async with self._changing:
            return await self._reload_config()

    async def _reload_config(self) -> bool:
        self.notifier.reloading()
        log.info("reloading %s", self.config.source_path)
        try:
            config = self.loader()
            await self.prepare(config)
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


async def _start_functions(functions: list[Function]) -> None:
    """Start new functions; if one cannot (its handler fails to initialise), stop them all and raise."""
    results = await asyncio.gather(*(f.start() for f in functions), return_exceptions=True)
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        await asyncio.gather(*(f.close(0) for f in functions), return_exceptions=True)
        raise failed[0]


def run_daemon(
    config: Config,
    reset_state: bool = False,
    watch: bool = False,
    loader: Callable[[], Config] | None = None,
) -> int:
    """Run the daemon on a loaded config until it stops (``loader`` re-reads it); returns the exit code."""
    setup_logging(config.logging.level, config.logging.format)
    daemon = Daemon(config, reset_state, watch, loader)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(daemon.run())
    return 130
