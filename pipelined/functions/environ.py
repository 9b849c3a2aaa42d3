"""os.environ per function for inline handlers: reads see the running function's variables first.

os.environ is process-wide, but two inline functions may set the same variable differently while running
concurrently. The overlay makes os.environ/os.getenv answer from the running function's environment.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

function_environment: ContextVar[Mapping[str, str] | None] = ContextVar("function_environment", default=None)


class EnvironOverlay(MutableMapping[str, str]):
    """os.environ replacement whose reads see the current function's variables first."""

    def __init__(self, base: MutableMapping[str, str]) -> None:
        self._base = base

    def __getitem__(self, key: str) -> str:
        overlay = function_environment.get()
        if overlay is not None and key in overlay:
            return overlay[key]
        return self._base[key]

    def __setitem__(self, key: str, value: str) -> None:
        self._base[key] = value

    def __delitem__(self, key: str) -> None:
        del self._base[key]

    def _merged(self) -> dict[str, str]:
        merged = dict(self._base)
        merged.update(function_environment.get() or {})
        return merged

    def __iter__(self) -> Iterator[str]:
        return iter(self._merged())

    def __len__(self) -> int:
        return len(self._merged())

    def copy(self) -> dict[str, str]:
        """A plain dict of what the running function sees, like os.environ.copy()."""
        return self._merged()

    def __repr__(self) -> str:
        return f"environ({self._merged()!r})"

    def __getattr__(self, name: str) -> Any:
        # os._Environ extras (encodekey, decodevalue, ...) still work on the real mapping.
        return getattr(self._base, name)


def install_environ_overlay() -> None:
    """Replace os.environ by the overlay (once per process)."""
    if not isinstance(os.environ, EnvironOverlay):
        os.environ = EnvironOverlay(os.environ)  # type: ignore[assignment]  # noqa: B003
