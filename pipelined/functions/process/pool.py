"""A function's warm worker processes: leased one invocation at a time, grown on demand, reaped when idle."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
from typing import Any

from pipelined.core.lambda_errors import LambdaError
from pipelined.errors import HandlerLoadError, WorkerError
from pipelined.functions.credentials import ERROR_TYPE as ROLE_ERROR_TYPE
from pipelined.functions.credentials import RoleCredentials, expiring, worker_credentials
from pipelined.functions.process import failures, protocol
from pipelined.functions.process.channel import Exited, TimedOut, WorkerProcess, peak_rss_kb
from pipelined.functions.process.forkserver import ForkServer
from pipelined.functions.process.spec import WorkerSpec
from pipelined.functions.runtime import Execution, Reply
from pipelined.observe.metrics import FunctionMetrics

log = logging.getLogger("pipelined.isolation")

# How long to wait for the zygote's exit report once a worker's socket closed.
EXIT_REPORT_TIMEOUT = 2.0


def _mb(kb: int) -> int | None:
    return math.ceil(kb / 1024) if kb else None


def _error(value: Any) -> LambdaError:
    # A Python worker sends the error object as JSON; a Runtime API worker has parsed it already.
    return value if isinstance(value, LambdaError) else LambdaError.from_payload(value)


class WorkerPool:
    """The worker processes of one function: leased one invocation at a time (ProcessRuntime drives it)."""

    def __init__(self, spec: WorkerSpec, metrics: FunctionMetrics | None = None) -> None:
        self.spec = spec
        self.metrics = metrics
        self.workers: set[WorkerProcess] = set()
        # A stack: the most recently used (warmest) worker is reused first, so the reaper finds the
        # least recently used ones at the front.
        self._idle: list[WorkerProcess] = []
        self._fork: ForkServer | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._top_ups: set[asyncio.Task[None]] = set()
        self._starting_provisioned = 0
        self._closing = False
        # Workers on code older than a recycle(): each is retired when its invocation ends.
        self._stale: set[WorkerProcess] = set()
        # The execution role whose credentials new workers start with (None: the daemon's own).
        self.credentials: RoleCredentials | None = None

    @property
    def idle(self) -> int:
        """Workers waiting for an invocation."""
        return len(self._idle)

    # --- lifecycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the provisioned workers (or one, to prove the handler imports); HandlerLoadError if not."""
        started, errors = await self._start_first("start-up")
        for worker in started:
            self._release(worker)
        if errors and all(error.error_type == ROLE_ERROR_TYPE for error in errors):
            # A role that cannot be assumed (logged) fails the function's invocations, not the daemon.
            return
        if errors:
            await self.close(0)
            error = errors[0]
            raise HandlerLoadError(f"function {self.spec.name}: {error.error_type}: {error.error_message}")

    async def close(self, timeout: float = 10.0) -> None:
        """Stop every worker once its in-flight invocation is done (killing it after `timeout`)."""
        self._closing = True
        for task in [self._reaper, *self._top_ups]:
            if task is not None:
                task.cancel()
        workers = list(self.workers)
        for worker in list(self._idle):
            self._retire(worker, None)
        busy = [w.reply for w in self.workers if w.reply is not None and not w.reply.done()]
        if busy:
            await asyncio.wait(busy, timeout=max(0.0, timeout))
        for worker in list(self.workers):
            self._retire(worker, None, kill=True)
        if workers:
            await asyncio.wait([w.lost for w in workers], timeout=EXIT_REPORT_TIMEOUT)
        if self._fork is not None:
            self._fork.release()
            self._fork = None

    async def recycle(self) -> LambdaError | None:
        """Hot reload: fresh workers on the code as it is now replace the running ones.

        The fresh workers (the provisioned ones, or one) start first: if the new code fails to initialise
        they are dropped, the old workers keep serving and the init error is returned. Otherwise idle old
        workers are retired at once and busy ones once their invocation ends (it finishes on the old code).
        """
        if self._closing:
            return None
        fresh, errors = await self._start_first("reload", quiet=True)
        if errors or self._closing:
            for worker in fresh:
                self._retire(worker, None)
            return errors[0] if errors else None
        for worker in list(self.workers.difference(fresh)):
            if worker in self._idle:
                self._retire(worker, None)
            else:
                self._stale.add(worker)
        for worker in fresh:
            self._release(worker)
        return None

    async def _start_first(
        self, why: str, quiet: bool = False
    ) -> tuple[list[WorkerProcess], list[LambdaError]]:
        """The provisioned workers, or one: those started, and the init errors of the others."""
        provisioned = self.spec.provisioned
        results = await asyncio.gather(
            *(self._start_worker(n < provisioned, why, quiet=quiet) for n in range(max(1, provisioned)))
        )
        started = [r for r in results if isinstance(r, WorkerProcess)]
        return started, [r for r in results if not isinstance(r, WorkerProcess)]

    # --- invocations ------------------------------------------------------------------------------------

    async def lease(self, request_id: str) -> Execution:
        """Take the warmest idle worker, or start one (a cold start)."""
        while self._idle and (self._idle[-1].lost.done() or expiring(self._idle[-1].credentials_expire)):
            worker = self._idle.pop()  # died while idle (its exit is still being processed), or stale
            if not worker.lost.done():
                self._retire(worker, "credentials")
        if self._idle:
            worker = self._idle.pop()
        elif self._closing:
            return Execution(error=failures.unavailable(request_id, "the function is shutting down"))
        else:
            started = await self._start_worker(False, request_id)
            if not isinstance(started, WorkerProcess):
                return Execution(error=started)
            worker = started
        if worker.report_init:
            worker.report_init = False
            return Execution(worker, worker.init_duration_ms)
        return Execution(worker)

    async def run(
        self,
        worker: WorkerProcess,
        event: Any,
        request_id: str,
        timeout: float,
        client_context: Any = None,
        trace_id: str = "",
    ) -> Reply:
        """Invoke the leased `worker` once; never raises for handler errors, timeouts or crashes."""
        deadline = time.monotonic() + timeout
        try:
            frame = self._encode_invocation(request_id, deadline, event, client_context, trace_id)
        except (TypeError, ValueError) as exc:
            self._release(worker)
            return Reply(None, failures.unserializable_event(exc), None)
        if worker.lost.done():  # died while idle, between lease and now
            return Reply(None, failures.exited(request_id, None), _mb(worker.rss_kb))
        answer_future = worker.invoke(request_id, frame, trace_id)
        worker.arm(deadline, self._expire)
        try:
            answer = await answer_future
        except asyncio.CancelledError:
            # Cancelled from outside (the shutdown budget ran out): the handler is mid-run and its
            # reply has nowhere to go, so the worker cannot be reused.
            self._retire(worker, None, kill=True)
            raise
        if isinstance(answer, TimedOut):
            return Reply(None, failures.timed_out(timeout), _mb(worker.rss_kb))
        if isinstance(answer, Exited):
            if answer.out_of_memory:
                return Reply(
                    None, failures.out_of_memory(request_id, self.spec.memory_mb), self.spec.memory_mb
                )
            return Reply(None, failures.exited(request_id, answer.status), _mb(worker.rss_kb))
        self._release(worker)
        error = answer.get("error")
        return Reply(answer.get("value"), None if error is None else _error(error), _mb(worker.rss_kb))

    def _expire(self, worker: WorkerProcess) -> None:
        # Read the peak while the process still exists: REPORT's Max Memory Used stays real.
        worker.rss_kb = max(worker.rss_kb, peak_rss_kb(worker.pid) or 0)
        worker.settle(TimedOut())
        self._retire(worker, "timeout", kill=True)

    # --- workers ----------------------------------------------------------------------------------------

    def _forkserver(self) -> ForkServer:
        if self._fork is None or self._fork.closed:
            if self._fork is not None:
                self._fork.release()
            self._fork = ForkServer.acquire()
        return self._fork

    async def _spawn_worker(self, provisioned: bool, request_id: str) -> WorkerProcess | LambdaError:
        """Have the zygote fork a worker and hand it its spec on its own channel."""
        loop = asyncio.get_running_loop()
        # A worker started with role credentials is replaced before they expire (functions/credentials.py).
        credentials = await worker_credentials(self.credentials)
        if isinstance(credentials, LambdaError):
            return credentials
        try:
            spec, launch = self._launch(provisioned)
        except WorkerError as exc:
            return failures.unavailable(request_id, str(exc))
        try:
            ours, theirs = socket.socketpair()
        except OSError as exc:  # EMFILE: the daemon is out of file descriptors
            self._abandon(launch)
            log.error("%s: cannot start a worker: %s", self.spec.name, exc)
            return failures.unavailable(request_id, str(exc))
        if credentials is not None:
            # In the environment from the start, as on Lambda: module-level clients pick them up.
            spec["environment"] = {**spec["environment"], **credentials.variables}
        # The environment goes to this worker only, on its own channel: the zygote never holds a secret.
        # Written before the fork so the worker finds it at once; what does not fit follows below.
        setup = protocol.encode({"t": protocol.SETUP, "spec": spec})
        ours.setblocking(False)
        try:
            sent = ours.send(setup)
        except BlockingIOError:
            sent = 0
        try:
            with theirs:
                pid, exit_status = await self._forkserver().spawn(theirs)
        except (WorkerError, OSError) as exc:
            ours.close()
            self._abandon(launch)
            return failures.unavailable(request_id, str(exc))
        worker = self._new_worker(pid, exit_status, provisioned, launch)
        worker.credentials_expire = credentials.expires if credentials is not None else None
        self.workers.add(worker)
        self._count_workers()
        await loop.connect_accepted_socket(lambda: worker, ours)
        if sent < len(setup):
            worker.send(setup[sent:])
        return worker

    async def _start_worker(
        self, provisioned: bool, request_id: str, quiet: bool = False
    ) -> WorkerProcess | LambdaError:
        """Fork a worker and wait for its handler import; returns it, or Lambda's error object.

        `quiet`: an init error is not logged here (a hot reload reports it once, with its location).
        """
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        forked = await self._spawn_worker(provisioned, request_id)
        if not isinstance(forked, WorkerProcess):
            return forked
        worker = forked
        timer = loop.call_later(self.spec.init_timeout, worker.settle, TimedOut())
        try:
            answer = await worker.ready
        except asyncio.CancelledError:
            self._retire(worker, None, kill=True)
            raise
        finally:
            timer.cancel()
        if isinstance(answer, TimedOut):
            self._retire(worker, "init_error", kill=True)
            return failures.init_timed_out(request_id, self.spec.init_timeout)
        if isinstance(answer, Exited):
            if answer.out_of_memory:
                return failures.out_of_memory(request_id, self.spec.memory_mb)
            return failures.exited(request_id, answer.status)
        if answer["t"] == protocol.INIT_ERROR:
            self._retire(worker, "init_error")
            error = _error(answer.get("error"))
            if not quiet:
                log.error("%s: init failed: %s: %s", self.spec.name, error.error_type, error.error_message)
            return error
        worker.init_duration_ms = (time.monotonic() - started) * 1000
        if self.metrics is not None:
            self.metrics.cold_starts.inc()
            self.metrics.init_duration.observe(worker.init_duration_ms / 1000)
        if self._reaper is None:
            self._reaper = loop.create_task(self._reap_idle(), name=f"{self.spec.name}/reaper")
        return worker

    # --- what a worker is: overridden by the Runtime API pool (functions/runtime_api/pool.py) ---------

    def _launch(self, provisioned: bool) -> tuple[dict[str, Any], Any]:
        """The zygote's spawn request for a new worker, and what _new_worker needs besides the pid."""
        return self.spec.message(provisioned, logging.getLogger().getEffectiveLevel()), None

    def _abandon(self, launch: Any) -> None:
        """Undo _launch when the worker could not be spawned."""

    def _new_worker(
        self, pid: int, exit_status: asyncio.Future[int | None], provisioned: bool, launch: Any
    ) -> WorkerProcess:
        """The daemon's side of a spawned worker."""
        return WorkerProcess(self.spec.name, pid, exit_status, provisioned, self._on_lost)

    def _encode_invocation(
        self, request_id: str, deadline: float, event: Any, client_context: Any, trace_id: str
    ) -> bytes:
        """What WorkerProcess.invoke sends; TypeError/ValueError when the event is not JSON."""
        message = {"t": protocol.INVOKE, "id": request_id, "deadline": deadline, "event": event}
        if trace_id:
            message["trace"] = trace_id
        if client_context is not None:
            message["client_context"] = client_context
        return protocol.encode(message)

    # --- worker bookkeeping -----------------------------------------------------------------------------

    def _release(self, worker: WorkerProcess) -> None:
        """Put a worker that finished an invocation back on the idle stack."""
        worker.request_id = None
        worker.reply = None
        if worker.retired:
            return
        if worker in self._stale:
            self._retire(worker, None)
            return
        if self._closing:
            self._retire(worker, None)
            return
        if expiring(worker.credentials_expire):
            self._retire(worker, "credentials")
            return
        worker.idle_since = time.monotonic()
        self._idle.append(worker)

    def _retire(self, worker: WorkerProcess, cause: str | None, kill: bool = False) -> None:
        """Stop using a worker: hang up (it exits) or kill it; count why unless it is a shutdown."""
        if kill and not worker.lost.done() and self._fork is not None:
            self._fork.kill(worker.pid)
        if worker.retired:
            return
        worker.retired = True
        worker.cause = cause
        worker.disarm()
        self.workers.discard(worker)
        self._stale.discard(worker)
        if worker in self._idle:
            self._idle.remove(worker)
        if not kill:
            worker.close()
        self._count_workers()
        if cause is not None and self.metrics is not None:
            self.metrics.restarted(cause)
        if cause in ("timeout", "crash", "oom", "credentials") and worker.init_duration_ms is not None:
            self._top_up()

    def _on_lost(self, worker: WorkerProcess) -> None:
        task = asyncio.get_running_loop().create_task(self._after_exit(worker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after_exit(self, worker: WorkerProcess) -> None:
        try:
            status = await asyncio.wait_for(asyncio.shield(worker.exit_status), EXIT_REPORT_TIMEOUT)
        except TimeoutError:
            status = None
        oom = worker.out_of_memory or (
            status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == worker.oom_exit_status
        )
        worker.settle(Exited(status, oom))
        crashed = "crash" if worker.init_duration_ms is not None else "init_error"
        self._retire(worker, "oom" if oom else crashed)

    def _top_up(self) -> None:
        """Replace provisioned workers that died, so N stay warm."""
        if self._closing:
            return
        missing = self.spec.provisioned - len(self.workers) - self._starting_provisioned
        for _ in range(max(0, missing)):
            task = asyncio.get_running_loop().create_task(self._start_provisioned())
            self._top_ups.add(task)
            task.add_done_callback(self._top_ups.discard)

    async def _start_provisioned(self) -> None:
        self._starting_provisioned += 1
        try:
            started = await self._start_worker(True, "provisioned")
        finally:
            self._starting_provisioned -= 1
        if isinstance(started, WorkerProcess):
            self._release(started)
        else:
            log.warning(
                "%s: replacing a provisioned worker failed: %s", self.spec.name, started.error_message
            )

    async def _reap_idle(self) -> None:
        interval = min(max(self.spec.idle_timeout / 4, 0.05), 30.0)
        while not self._closing:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for worker in [w for w in self._idle if expiring(w.credentials_expire)]:
                self._retire(worker, "credentials")  # provisioned ones are replaced (_top_up)
            spare = len(self.workers) - self.spec.provisioned
            while spare > 0 and self._idle and now - self._idle[0].idle_since >= self.spec.idle_timeout:
                self._retire(self._idle[0], "idle")
                spare -= 1

    def _count_workers(self) -> None:
        if self.metrics is not None:
            self.metrics.workers.set(len(self.workers))
