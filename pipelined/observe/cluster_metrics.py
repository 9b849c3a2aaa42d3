"""The metrics of a cluster member: live members, leases held, takeovers, steals, fenced checkpoints."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ClusterMetrics:
    """The cluster's metric families, in the daemon's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.members = Gauge("pipelined_cluster_members", "Members with a live heartbeat.", registry=r)
        self.leases_held = Gauge(
            "pipelined_leases_held",
            "Leases this member holds, by kind (shard, schedule).",
            ("kind",),
            registry=r,
        )
        self.takeovers = Counter(
            "pipelined_lease_takeovers", "Expired leases of another member taken over.", registry=r
        )
        self.steals = Counter(
            "pipelined_lease_steals", "Live leases taken from the most loaded member to balance.", registry=r
        )
        self.fenced = Counter(
            "pipelined_checkpoints_fenced",
            "Checkpoint writes refused because this member no longer held the shard's lease.",
            registry=r,
        )
