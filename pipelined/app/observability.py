"""What the daemon tells about itself beyond its own metrics: the log store, EMF, active tracing, gauges.

The daemon owns one `Observability`: it starts the log store before the functions load (their init
lines are kept too), hands `tracing: active` functions the one tracer, feeds handlers' EMF blobs to
/metrics, refreshes the gauges read from the state store at each scrape, and closes it all after the
listeners stopped (the tracer sends its last spans off the event loop).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from pipelined.app.logs_command import log_directory
from pipelined.app.status import dead_letter_counts
from pipelined.config import Config
from pipelined.observe.emf import EmfMetrics
from pipelined.observe.log_store import LogStore
from pipelined.observe.logs import observe_handler_lines
from pipelined.observe.metrics import Metrics
from pipelined.observe.tracing import Tracer
from pipelined.state import StateStore


class Observability:
    """The daemon's log store, EMF exporter, tracer and scrape-time gauges."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        # The Embedded Metric Format blobs handlers print, on /metrics (see apply).
        self.emf = EmfMetrics(metrics.registry)
        self.log_store: LogStore | None = None
        # The OpenTelemetry exporter of `tracing: active` functions, made when the first one is built.
        self.tracer: Tracer | None = None

    def start(self, config: Config) -> None:
        """Start keeping function lines (`logging.store`) before anything logs them."""
        store = config.logging.store
        if store.enabled:
            self.log_store = LogStore(log_directory(config), store.max_size, store.retention)
            self.log_store.start(asyncio.get_running_loop())
            logging.getLogger().addHandler(self.log_store)

    def apply(self, config: Config) -> None:
        """Follow a (re)loaded config's `metrics` settings."""
        self.emf.max_series = config.metrics.emf_max_series
        observe_handler_lines(self.emf.observe if config.metrics.emf else None)

    def tracer_for(self, config: Config) -> Tracer:
        """The tracer of the config's `tracing` settings (a new one when they changed)."""
        settings = config.tracing
        assert settings.otlp_endpoint is not None  # config validation requires it for active tracing
        current = self.tracer
        wanted = (settings.otlp_endpoint, settings.service_name)
        if current is None or (current.otlp_endpoint, current.service_name) != wanted:
            if current is not None:
                current.shutdown()
            current = self.tracer = Tracer(settings.otlp_endpoint, settings.service_name)
        return current

    async def refresh_gauges(self, state: StateStore | None, functions: Iterable[str]) -> None:
        """Before a scrape: the dead-letter store is counted, nothing else keeps that figure in memory."""
        counts = await dead_letter_counts(state)
        if counts is not None:
            for name in functions:
                self.metrics.dead_letters.labels(name).set(counts.get(name, 0))

    async def close(self) -> None:
        """Stop observing handler lines, write the last log lines, send the last spans."""
        observe_handler_lines(None)
        if self.log_store is not None:
            logging.getLogger().removeHandler(self.log_store)
            self.log_store.close()
        if self.tracer is not None:
            # Off the loop: the exporter sends what is buffered with a blocking HTTP client.
            await asyncio.to_thread(self.tracer.shutdown)
