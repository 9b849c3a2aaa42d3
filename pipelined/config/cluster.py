"""The `state:` and `cluster:` sections: where the state lives, and how daemons sharing it coordinate."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from pipelined.config.types import ConfigModel, Duration


class StateConfig(ConfigModel):
    """Where the state lives: a PostgreSQL `url` several daemons share, or (absent) SQLite in state_dir."""

    url: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(f"must be a postgresql:// URL, got scheme {parts.scheme or 'none'!r}")
        if not parts.path.strip("/"):
            raise ValueError("names no database (postgresql://user@host:5432/DATABASE)")
        return value


def default_member_id() -> str:
    """The hostname and process id: unique among the daemons of one cluster."""
    return f"{socket.gethostname()}-{os.getpid()}"


class ClusterConfig(ConfigModel):
    """How the daemons sharing a PostgreSQL state split the work (unused with SQLite)."""

    member_id: str | None = Field(default=None, min_length=1, max_length=200)
    # Kinesis Client Library's failover time; a member silent for this long loses its leases.
    lease_duration: Duration = Field(default=10.0, ge=2.0, le=3600.0)
    renew_interval: Duration | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _renew(self) -> ClusterConfig:
        if self.renew_interval is not None and self.renew_interval >= self.lease_duration:
            raise ValueError(
                f"renew_interval ({self.renew_interval:g}s) must be shorter than lease_duration "
                f"({self.lease_duration:g}s)"
            )
        return self

    @property
    def renew_every(self) -> float:
        """Seconds between heartbeats: renew_interval, or a third of the lease duration."""
        return self.renew_interval if self.renew_interval is not None else self.lease_duration / 3
