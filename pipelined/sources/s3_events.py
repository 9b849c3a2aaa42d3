"""S3 event notifications in Lambda's shape: the events/prefix/suffix filter shared by every S3 source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote_plus


def event_name_matches(event_name: str, patterns: Sequence[str]) -> bool:
    """True if `event_name` (with or without "s3:") matches one of `patterns`, e.g. "s3:ObjectCreated:*"."""
    name = event_name if event_name.startswith("s3:") else f"s3:{event_name}"
    for pattern in patterns:
        if pattern.endswith("*"):
            if name.startswith(pattern[:-1]):
                return True
        elif name == pattern:
            return True
    return False


def matches_s3_filter(record: Mapping[str, Any], events: Sequence[str], prefix: str, suffix: str) -> bool:
    """Whether an AWS-shaped S3 record passes a source's `events`, `prefix` and `suffix` filters.

    S3 sends object keys URL-encoded; the filters apply to the real (decoded) key, as S3's own do.
    """
    if not event_name_matches(str(record.get("eventName", "")), events):
        return False
    key = unquote_plus(str(record.get("s3", {}).get("object", {}).get("key", "")))
    return key.startswith(prefix) and key.endswith(suffix)
