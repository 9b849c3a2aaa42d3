"""One environment variable a worker rewrites for every invocation (`_X_AMZN_TRACE_ID`), without a leak.

`os.environ[name] = value` calls setenv(3), and glibc's setenv keeps a copy of every distinct
`NAME=value` it is ever given, for the life of the process (a pointer getenv() returned must stay
valid). With a fresh trace id per invocation that grew a worker by ~137 MB per million invocations
until its memory limit (`memory_mb`) ended it mid-invocation. putenv(3) instead
puts a buffer of the caller's into the environment: the slot owns one and overwrites it in place, and
keeps `os.environ`'s own mapping in step, so Python code, C code (getenv) and subprocesses all see the
invocation's value.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import MutableMapping

# Room for any X-Ray header Lambda sends (Root, Parent, Sampled, Lineage); a longer one gets a new buffer.
CAPACITY = 512


class EnvironSlot:
    """A variable set through putenv(3) on a buffer overwritten in place (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self._name = name
        # os.environ's own encoding on POSIX: the file system encoding, surrogateescape.
        self._key = os.fsencode(name)
        self._prefix = self._key + b"="
        putenv = ctypes.CDLL(None, use_errno=True).putenv
        putenv.argtypes = [ctypes.c_void_p]
        putenv.restype = ctypes.c_int
        self._putenv = putenv
        # Every buffer ever handed to putenv stays alive: the environment may still point into it. A new
        # one is made only for a longer value (twice its size), so there are a handful at most.
        self._buffers: list[ctypes.Array[ctypes.c_char]] = []
        self._view: memoryview | None = None
        # The value object last stored in os.environ's mapping: another one there means handler code
        # set or deleted the variable itself (setenv/unsetenv), so the environment no longer points at
        # the buffer and it must be put back.
        self._stored: bytes | None = None

    def set(self, value: str) -> None:
        """Make `value` the variable's value, for os.environ, getenv() and subprocesses alike."""
        encoded = os.fsencode(value)
        entry = self._prefix + encoded + b"\0"
        # os.environ's mapping of encoded names to values, written without its setenv().
        data: MutableMapping[bytes, bytes] = os.environ._data  # type: ignore[attr-defined]
        view = self._view
        if view is None or len(entry) > len(view):
            self._buffers.append(ctypes.create_string_buffer(max(CAPACITY, 2 * len(entry))))
            view = self._view = memoryview(self._buffers[-1]).cast("B")
            put_back = True
        else:
            put_back = data.get(self._key) is not self._stored
        view[: len(entry)] = entry
        if put_back and self._putenv(ctypes.addressof(self._buffers[-1])) != 0:
            raise OSError(ctypes.get_errno(), f"putenv({self._name}) failed")
        data[self._key] = encoded
        self._stored = encoded
