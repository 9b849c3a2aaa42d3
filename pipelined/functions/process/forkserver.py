"""The daemon's handle on its zygote process: spawn workers, kill them, learn how they exited."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import socket
import subprocess
import sys
import weakref
from typing import ClassVar

from pipelined.errors import WorkerError
from pipelined.functions.process.zygote import not_dumpable

log = logging.getLogger("pipelined.isolation")

# -I: the zygote must not pick up PYTHON* variables; it gets the daemon's sys.path explicitly instead.
_BOOTSTRAP = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[3]); "
    "from pipelined.functions.process.zygote import main; main(int(sys.argv[1]), int(sys.argv[2]))"
)
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


class ForkServer:
    """One zygote per event loop, shared by every pool on it and stopped when the last pool lets go."""

    _instances: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ForkServer]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._users = 0
        self._tags = itertools.count()
        self._spawns: dict[int, asyncio.Future[int]] = {}
        self._exits: dict[int, asyncio.Future[int | None]] = {}
        self._sock: socket.socket | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def acquire(cls) -> ForkServer:
        """The running loop's fork server, started if needed; pair with release()."""
        loop = asyncio.get_running_loop()
        server = cls._instances.get(loop)
        if server is None or server.closed:
            server = cls(loop)
            server._start()
            cls._instances[loop] = server
        server._users += 1
        return server

    def release(self) -> None:
        """Let go of the fork server; the last user stops the zygote (which kills what is left)."""
        self._users -= 1
        if self._users <= 0:
            self.close()

    @property
    def closed(self) -> bool:
        """True once the zygote is stopped or died."""
        return self._sock is None

    def _start(self) -> None:
        # This process holds every function's environment and now runs their code as its own user: a
        # worker must not read its /proc/<pid>/environ or /proc/<pid>/mem either.
        not_dumpable()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {"PATH": os.environ.get("PATH", _DEFAULT_PATH), "LANG": "C.UTF-8"}
        # glibc reads this once at start-up; without it every handler thread may reserve a 64 MB malloc
        # arena, which counts against the RLIMIT_AS memory limit.
        env["MALLOC_ARENA_MAX"] = "2"
        if "LD_LIBRARY_PATH" in os.environ:
            env["LD_LIBRARY_PATH"] = os.environ["LD_LIBRARY_PATH"]
        with theirs:
            # Started from the loop's thread: PR_SET_PDEATHSIG fires when the *thread* that forked exits.
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-c",
                    _BOOTSTRAP,
                    str(theirs.fileno()),
                    str(os.getpid()),
                    json.dumps(sys.path),
                ],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=env,
            )
        self._sock = ours
        self._loop.add_reader(ours.fileno(), self._on_readable)
        log.debug("zygote started (pid %d)", self._process.pid)

    async def spawn(self, channel: socket.socket) -> tuple[int, asyncio.Future[int | None]]:
        """Fork a worker that serves `channel`; returns its pid and a future of its wait status.

        The request names no function: the worker reads its spec from `channel`, never via the zygote.
        """
        if self._sock is None:
            raise WorkerError("the zygote is not running")
        tag = next(self._tags)
        future: asyncio.Future[int] = self._loop.create_future()
        self._spawns[tag] = future
        message = json.dumps({"op": "spawn", "tag": tag}).encode()
        try:
            socket.send_fds(self._sock, [message], [channel.fileno()])
        except OSError as exc:
            self._spawns.pop(tag, None)
            raise WorkerError(f"cannot reach the zygote: {exc}") from exc
        pid = await future
        return pid, self._exits.setdefault(pid, self._loop.create_future())

    def kill(self, pid: int) -> None:
        """SIGKILL a worker and its process group (the zygote checks it has not been reaped yet)."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.send(json.dumps({"op": "kill", "pid": pid}).encode())

    def _on_readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                log.warning("the zygote exited; workers will be forked from a new one")
                self.close()
                return
            message = json.loads(data)
            if message["op"] == "spawned":
                future = self._spawns.pop(message["tag"], None)
                if future is not None and not future.done():
                    if "error" in message:
                        future.set_exception(WorkerError(f"fork failed: {message['error']}"))
                    else:
                        future.set_result(message["pid"])
            elif message["op"] == "exited":
                exit_future = self._exits.pop(message["pid"], None)
                if exit_future is None:
                    # Exited before spawn() returned: keep the status for it.
                    self._exits[message["pid"]] = exit_future = self._loop.create_future()
                    self._loop.call_later(60, self._exits.pop, message["pid"], None)
                if not exit_future.done():
                    exit_future.set_result(message["status"])

    def close(self) -> None:
        """Stop the zygote: closing its socket makes it kill every worker and exit."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(RuntimeError, ValueError):  # the loop may already be closed
                self._loop.remove_reader(sock.fileno())
            sock.close()
        for future in self._spawns.values():
            if not future.done():
                future.set_exception(WorkerError("the zygote exited"))
        for exit_future in self._exits.values():
            if not exit_future.done():
                exit_future.set_result(None)  # the status died with the zygote
        self._spawns.clear()
        self._exits.clear()
        if self._process is not None:
            try:
                self._process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._instances.get(self._loop) is self:
            del self._instances[self._loop]
