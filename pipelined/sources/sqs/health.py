"""Whether a queue's endpoint answers: failed calls, calls that hang, and probes beside long polls."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pipelined.aws import AwsClients, describe
from pipelined.observe.metrics import SourceMetrics
from pipelined.sources.call_watch import CallWatch

log = logging.getLogger("pipelined.sources.sqs")

# While a long poll waits longer than this, a quick call checks that the endpoint still answers.
PROBE_AFTER = 2.0


class QueueHealth:
    """One SQS source's view of its endpoint, for /readyz: down from a failure until an answer."""

    def __init__(self, name: str, clients: AwsClients, metrics: SourceMetrics | None) -> None:
        self._name = name
        self._clients = clients
        self._metrics = metrics
        self._answering = True
        self._probed_at = 0.0
        # Calls other than long polls, which wait by design and are probed instead.
        self.calls = CallWatch()

    @property
    def healthy(self) -> bool:
        """False from a failed call until the next answer (a receive or a probe), and while a call hangs."""
        return self._answering and not self.calls.stalled()

    def failed(self) -> None:
        self._answering = False

    def answered(self) -> None:
        self._answering = True

    async def long_poll(self, call: asyncio.Future[Any], queue_url: str) -> Any:
        """Await a long poll; while it waits, check every PROBE_AFTER seconds that the endpoint answers.

        A long poll that waits is normal; one whose endpoint hangs looks the same. A quick call beside it
        tells them apart, so readiness goes down within seconds, not after the 20 s poll and its retries.
        """
        started = time.monotonic()
        try:
            while True:
                done, _ = await asyncio.wait(
                    {call}, timeout=max(0.0, self._probe_due(started) - time.monotonic())
                )
                if done:
                    return call.result()
                # Asked again: another poller may have probed while this one waited.
                if time.monotonic() >= self._probe_due(started):
                    self._probed_at = time.monotonic()
                    await self._probe(queue_url)
        finally:
            if not call.done():
                call.cancel()

    def _probe_due(self, started: float) -> float:
        # Once the poll has waited PROBE_AFTER and the last probe (any poller's) is as old: a fixed wait
        # instead could miss the due time by almost a whole PROBE_AFTER.
        return max(started, self._probed_at) + PROBE_AFTER

    async def _probe(self, queue_url: str) -> None:
        try:
            probe = await self._clients.client("sqs", "probe")
            await probe.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        except Exception as exc:
            if self._answering:
                log.warning(
                    "%s: queue %s: the endpoint does not answer (%s)", self._name, queue_url, describe(exc)
                )
                if self._metrics is not None:
                    self._metrics.source_errors.inc()
            self._answering = False
            return
        self._answering = True
