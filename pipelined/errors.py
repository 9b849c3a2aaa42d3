"""Every error pipelined raises on purpose, under one root."""

from __future__ import annotations


class PipelinedError(Exception):
    """Base class for every error pipelined raises on purpose."""


class ConfigError(PipelinedError):
    """The configuration file is invalid; each problem names the file, line and field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class HandlerLoadError(PipelinedError):
    """A function's handler module or attribute could not be imported."""


class StateError(PipelinedError):
    """The SQLite state store is unusable (bad path, newer schema, corruption)."""


class SourceError(PipelinedError):
    """An event source failed to poll or settle; the source backs off and retries."""


class DestinationError(PipelinedError):
    """An on-failure destination could not accept a failure record."""


class UsageError(PipelinedError):
    """A command-line argument is wrong; the message says which and why."""


class WorkerError(PipelinedError):
    """A worker process could not be started (the zygote is gone, fork failed)."""
