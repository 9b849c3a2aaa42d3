"""ISO-8601 UTC timestamps as AWS writes them, with a trailing Z."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_seconds(ts: float) -> str:
    """Epoch seconds as `2026-01-01T00:00:00Z` (EventBridge, DynamoDB)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(ts: float) -> str:
    """Epoch seconds as `2026-01-01T00:00:00.000Z` (Kinesis, destination records, logs)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_millis() -> str:
    """The current time, as iso_millis writes it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
