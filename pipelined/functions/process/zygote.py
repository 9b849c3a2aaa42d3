"""The zygote: a pre-imported process that forks workers on request and reports how each one exits.

Forking from a process that has already imported the worker's modules is what makes a cold start cost a
few milliseconds instead of a Python start-up. The zygote is single-threaded (fork is safe), in a session
of its own (a Ctrl-C in the daemon's terminal does not reach the workers), and dies with the daemon
(PR_SET_PDEATHSIG). Requests and reports are JSON datagrams on a SOCK_SEQPACKET socket; a spawn request
carries the worker's end of its channel as SCM_RIGHTS. Workers are children of the zygote, so only the
zygote can learn their exit status: it forwards every one.

The zygote never learns what it forks: a spawn request names no function, and the worker reads its
spec (environment included) from its own channel after the fork, so no function's secrets are in the
heap every later worker inherits. The zygote and its workers are not dumpable: another process of the
same user (another function's worker) cannot read their /proc/<pid>/environ or /proc/<pid>/mem.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import selectors
import signal
import socket
import sys
from typing import Any, NoReturn

from pipelined.functions.process import worker

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
# Standard-library modules handlers commonly import, loaded once here and shared copy-on-write by every
# worker. Heavy third-party packages are deliberately not preloaded: their init is the function's own.
PRELOAD = ("base64", "dataclasses", "datetime", "decimal", "hashlib", "urllib.parse", "uuid", "zlib")


def die_with_parent(parent_pid: int) -> None:
    """Get SIGKILLed when the parent exits, and exit now if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(0)


def not_dumpable() -> None:
    """Make /proc/<pid>/environ, /proc/<pid>/mem and ptrace of this process root's only (kept across fork)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


class Zygote:
    """The fork server loop: spawn and kill requests in, spawned and exited reports out."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.children: set[int] = set()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self._wake_w)
        self.selector = selectors.DefaultSelector()
        self.selector.register(control, selectors.EVENT_READ)
        self.selector.register(self._wake_r, selectors.EVENT_READ)

    def serve(self) -> NoReturn:
        """Run until the daemon closes the control socket, then kill every worker and exit."""
        while True:
            for key, _ in self.selector.select():
                if key.fileobj is self.control:
                    if not self._on_request():
                        self._shutdown()
                else:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                    self._reap()

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.control.send(json.dumps(message).encode())
        except OSError:
            self._shutdown()  # the daemon is gone

    def _on_request(self) -> bool:
        try:
            data, fds, _, _ = socket.recv_fds(self.control, 1 << 20, 4)
        except OSError:
            return False
        if not data:
            return False
        request = json.loads(data)
        if request["op"] == "spawn" and fds:
            self._spawn(request["tag"], fds[0])
        elif request["op"] == "kill" and request["pid"] in self.children:
            # The worker leads its own process group: whatever it started dies with it.
            with contextlib.suppress(OSError):
                os.killpg(request["pid"], signal.SIGKILL)
        for fd in fds[1:]:
            os.close(fd)
        return True

    def _spawn(self, tag: int, channel_fd: int) -> None:
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(channel_fd)
            self._send({"op": "spawned", "tag": tag, "error": str(exc)})
            return
        if pid == 0:
            try:
                self._become_worker(channel_fd)
            finally:
                os._exit(70)
        # Set in both processes so a kill right after this reply cannot race the child's own setpgid.
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        os.close(channel_fd)
        self.children.add(pid)
        self._send({"op": "spawned", "tag": tag, "pid": pid})

    def _become_worker(self, channel_fd: int) -> NoReturn:
        zygote_pid = os.getppid()
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self.control.close()
        die_with_parent(zygote_pid)
        # Inherited from the zygote already; said again so a worker never depends on how it was started.
        not_dumpable()
        gc.unfreeze()
        worker.run(socket.socket(fileno=channel_fd))

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            # Processes the worker started outlive it otherwise; the group id stays reserved while any
            # member lives, so this cannot hit an unrelated process.
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            self._send({"op": "exited", "pid": pid, "status": status})

    def _shutdown(self) -> NoReturn:
        for pid in list(self.children):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        for pid in list(self.children):
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)
        os._exit(0)


def main(control_fd: int, parent_pid: int) -> NoReturn:
    """Entry point, run by the bootstrap in forkserver.py: `main(fd, daemon_pid)`."""
    not_dumpable()
    die_with_parent(parent_pid)
    control = socket.socket(fileno=control_fd)
    for name in PRELOAD:
        __import__(name)
    # Objects that exist now are never collected in a worker, so the GC does not dirty (copy) their pages.
    gc.freeze()
    Zygote(control).serve()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
