"""Handlers for the secrets fault test: one function holds a secret, another tries to steal it.

The thief never sees the secret itself: it searches memory for the secret's *shape* (a fixed prefix and 32
hex digits), so finding one can only mean it was read from somewhere.
"""

import ctypes
import os
import re

PR_SET_DUMPABLE = 4
SECRET = re.compile(rb"pipelined-secret-[0-9a-f]{32}")
MARKER = re.compile(rb"pipelined-marker-[0-9a-f]{32}")


def holder(event, context):
    """The function with the secret in its environment: says where it runs."""
    return {"pid": os.getpid(), "zygote": os.getppid(), "has_secret": "HOLDER_SECRET" in os.environ}


def _read_memory(pid, pattern):
    """Scan every writable mapping of `pid` through /proc/<pid>/mem; (bytes read, found)."""
    scanned, found = 0, False
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            if "w" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                data = os.pread(mem.fileno(), end - start, start)
            except OSError:
                continue
            scanned += len(data)
            found = found or pattern.search(data) is not None
    return scanned, found


def _attempt(read):
    try:
        scanned, found = read()
    except OSError as exc:
        return {"read": False, "error": f"{type(exc).__name__}: {exc.strerror}", "found": False}
    return {"read": True, "bytes": scanned, "found": found}


def _environ(pid):
    with open(f"/proc/{pid}/environ", "rb") as environ:
        data = environ.read()
    return len(data), SECRET.search(data) is not None


def thief(event, context):
    """Try /proc/<pid>/environ and /proc/<pid>/mem of each target, then this worker's own memory."""
    results = {}
    for name, pid in event["targets"].items():
        results[name] = {
            "environ": _attempt(lambda pid=pid: _environ(pid)),
            "mem": _attempt(lambda pid=pid: _read_memory(pid, SECRET)),
        }
    # Its own memory is fair game (a process may make itself dumpable again): it must hold no other
    # function's secret, inherited from the zygote. The marker (its own variable) proves the scan works.
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    results["self"] = {
        "mem": _attempt(lambda: _read_memory("self", SECRET)),
        "marker": _attempt(lambda: _read_memory("self", MARKER)),
    }
    return results
