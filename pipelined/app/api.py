"""The AWS APIs' place in the daemon: the async invocation queue and the `api.listen` listener, which
serves the Lambda API and EventBridge's (PutEvents routes events to rules through the same queue).

Start-up: the queue (loading what a previous run left) once the functions exist, then the listener.
Shutdown: the listener first (requests in flight finish, new ones are refused), then the queue, whose
running events finish within the shutdown timeout or run again after the restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pipelined.aws import AwsClients
from pipelined.config import Config
from pipelined.dispatch.async_destinations import RecordSender
from pipelined.dispatch.async_queue import AsyncQueue
from pipelined.errors import PipelinedError
from pipelined.http.eventbridge_api import EventBridgeApi
from pipelined.http.lambda_api import LambdaApi
from pipelined.http.server import ApiServer
from pipelined.invoke.service import InvokeService
from pipelined.observe.metrics import Metrics
from pipelined.observe.tail import LogTail
from pipelined.state import StateStore

log = logging.getLogger("pipelined.api")


class ApiFrontDoor:
    """The queue and listener of one daemon; `config()` is the daemon's current configuration."""

    def __init__(
        self,
        config: Callable[[], Config],
        service: InvokeService,
        state: StateStore,
        aws: Callable[[], AwsClients],
        metrics: Metrics,
    ) -> None:
        self._config = config
        self.queue = AsyncQueue(state, service, None, metrics)
        self.queue.sender = RecordSender(state, aws, self.queue.enqueue)
        self.tail = LogTail()
        self.api = LambdaApi(service, self.queue, self.tail, metrics, lambda: config().source_path)
        self.events = EventBridgeApi(config, state, self.queue, metrics, self.api.account)
        self.server: ApiServer | None = None
        self._metrics = metrics

    async def start(self) -> None:
        """Start the queue, then listen (unless `api.listen` is null)."""
        settings = self._config().api
        self.queue.max_events = settings.max_queued_events
        await self.queue.start()
        if settings.listen is None:
            return
        self.tail.install()
        server = ApiServer(
            settings.host,
            settings.port,
            settings.credentials,
            self._metrics,
            [self.events.route(self.api.unsupported), *self.api.routes()],
            services=frozenset({"lambda", "events"}),
            shutdown_timeout=self._config().shutdown_timeout,
        )
        try:
            await server.start()
        except OSError as exc:
            raise PipelinedError(f"cannot listen on {settings.listen} (api.listen): {exc}") from exc
        self.server = server
        log.info("Lambda API and EventBridge on http://%s:%d", settings.host, server.port)

    def reconfigure(self, config: Config) -> None:
        """Apply a reloaded config: credentials and the queue bound (a new `listen` needs a restart)."""
        self.queue.max_events = config.api.max_queued_events
        if self.server is not None:
            self.server.set_credentials(config.api.credentials)
        if config.api.listen != self._config().api.listen:
            log.warning("api.listen changed to %s: restart the daemon to move it", config.api.listen)

    async def stop_listening(self) -> None:
        """Stop taking requests; those in flight finish (up to the shutdown timeout)."""
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def stop_queue(self, timeout: float) -> None:
        """Let running async invocations finish up to `timeout`; the rest run again after a restart."""
        await self.queue.stop(timeout)
