"""A worker that is another program: the zygote's child replaces itself with `argv` (Node.js, a bootstrap).

Runs in the zygote's freshly forked child, so only the standard library is used. The program inherits
what the zygote set up (its own process group, death with the zygote) and gets exactly the environment
of the spawn request; its stdout and stderr are the channel socket, which the daemon reads as log lines.
"""

from __future__ import annotations

import os
import signal
from typing import Any, NoReturn

# The status of a child whose program could not be started, as a shell reports it.
EXIT_NOT_STARTED = 127


def run(spec: dict[str, Any], channel_fd: int) -> NoReturn:
    """Become `spec["argv"]` in `spec["code"]` with `spec["environment"]`; never returns."""
    try:
        # Python ignores these; an ignored signal stays ignored across exec (subprocess resets them too).
        for name in ("SIGPIPE", "SIGXFSZ"):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
        os.dup2(channel_fd, 1)
        os.dup2(channel_fd, 2)
        if channel_fd > 2:
            os.close(channel_fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.chdir(spec["code"])
        argv = [str(arg) for arg in spec["argv"]]
        os.execve(argv[0], argv, dict(spec["environment"]))
    except OSError as exc:
        # Read by the daemon as the worker's last log line before it reports the exit.
        os.write(2, f"pipelined: cannot start {spec['argv'][0]}: {exc.strerror or exc}\n".encode())
    os._exit(EXIT_NOT_STARTED)
