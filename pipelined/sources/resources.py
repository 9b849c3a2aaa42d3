"""The AWS resources a configuration names, which `pipelined dev` creates on its embedded endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelined.config import AsyncDestination, DestinationConfig
from pipelined.core.identity import parse_arn


@dataclass
class DevResources:
    """What the config names and dev mode creates."""

    # queue name -> visibility timeout (None: an on-failure queue, created plain)
    queues: dict[str, int | None] = field(default_factory=dict)
    buckets: set[str] = field(default_factory=set)
    tables: set[str] = field(default_factory=set)
    streams: set[str] = field(default_factory=set)
    topics: set[str] = field(default_factory=set)

    def missing(self, wanted: DevResources) -> DevResources:
        """What `wanted` names that this does not."""
        return DevResources(
            {n: v for n, v in wanted.queues.items() if n not in self.queues},
            wanted.buckets - self.buckets,
            wanted.tables - self.tables,
            wanted.streams - self.streams,
            wanted.topics - self.topics,
        )

    def update(self, other: DevResources) -> None:
        """Add everything `other` names."""
        self.queues.update(other.queues)
        self.buckets |= other.buckets
        self.tables |= other.tables
        self.streams |= other.streams
        self.topics |= other.topics

    def add_destination(self, destination: DestinationConfig | AsyncDestination | None) -> None:
        """The queue or topic a destination names (nothing for the local store or a function)."""
        if destination is None or destination.kind in ("sqlite", "function"):
            return
        if destination.kind == "sns":
            self.topics.add(parse_arn(destination.destination)["resource"])
        else:
            self.queues.setdefault(queue_name(destination.destination), None)


def queue_name(ref: str) -> str:
    """The name in a queue URL, ARN or name."""
    if ref.startswith("arn:"):
        return parse_arn(ref)["resource"]
    return ref.rstrip("/").rsplit("/", 1)[-1]
