"""pipelined: a self-hosted, Lambda-compatible event pipeline daemon."""

__version__ = "0.1.0"
