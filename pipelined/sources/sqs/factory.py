"""Building the SQS source from its config, and what dev mode creates for it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelined.config import EventSourceConfig, FunctionConfig, SqsSource
from pipelined.sources.resources import DevResources, queue_name
from pipelined.sources.sqs.records import sqs_decoder
from pipelined.sources.sqs.source import QueueSettings, SqsQueueSource

if TYPE_CHECKING:
    from pipelined.sources.base import SourceContext


def concurrency_ceiling(maximum_concurrency: int, ctx: SourceContext) -> int:
    """`maximum_concurrency`, but never more than the function's `reserved_concurrency`."""
    reserved = ctx.reserved_concurrency
    return maximum_concurrency if reserved is None else min(maximum_concurrency, reserved)


def sqs_source(config: SqsSource, ctx: SourceContext) -> SqsQueueSource:
    """The source for one `type: sqs` event source."""
    assert config.name is not None
    settings = QueueSettings(
        queue=config.queue,
        batch_size=config.batch_size,
        batching_window=config.maximum_batching_window,
        report_batch_item_failures=config.report_batch_item_failures,
        concurrency=concurrency_ceiling(config.maximum_concurrency, ctx),
        visibility_timeout=config.visibility_timeout,
        backoff_base=config.retry_backoff.base,
        backoff_max=config.retry_backoff.max,
    )
    decoder = sqs_decoder(filtering=bool(config.filter_patterns))
    return SqsQueueSource(config.name, settings, ctx.aws, decoder, ctx.metrics)


# Lambda's advice for a queue's visibility timeout: six times the function timeout.
VISIBILITY_FACTOR = 6


def dev_resources(config: EventSourceConfig, function: FunctionConfig, found: DevResources) -> None:
    """Dev mode creates the queue, with Lambda's recommended visibility timeout."""
    assert isinstance(config, SqsSource)
    wait = config.maximum_batching_window
    found.queues[queue_name(config.queue)] = int(VISIBILITY_FACTOR * function.timeout + wait)
