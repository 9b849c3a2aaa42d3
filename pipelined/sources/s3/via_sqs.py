"""S3 event notifications read from an SQS queue (`type: s3`, `via: {sqs: QUEUE}`), and their setup.

The queue machinery is the SQS source's (`sources/sqs.py`); this module only decodes notification
bodies into Lambda's S3 records and configures bucket → queue notifications.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipelined.aws import AwsClients, describe, resolve_queue_url
from pipelined.config import Config, EventSourceConfig, FunctionConfig, S3Source
from pipelined.core.records import Record
from pipelined.errors import SourceError
from pipelined.observe.metrics import SourceMetrics
from pipelined.sources.resources import DevResources, queue_name
from pipelined.sources.s3.records import decode_notification, matches_s3_filter, record_bucket, s3_record_id
from pipelined.sources.sqs.factory import VISIBILITY_FACTOR, concurrency_ceiling
from pipelined.sources.sqs.records import Decoder, Message, QueueInfo, sent_at
from pipelined.sources.sqs.source import QueueSettings, SqsQueueSource

if TYPE_CHECKING:
    from pipelined.sources.base import SourceContext

log = logging.getLogger("pipelined.sources.s3")


def s3_decoder(config: S3Source, metrics: SourceMetrics | None = None) -> Decoder:
    """Each message's S3 records for `config.bucket` that pass its events/prefix/suffix filter.

    A message with none left (an `s3:TestEvent`, or only other objects) is deleted unseen; one that
    is not an S3 notification at all is left to the queue's redrive policy.
    """

    def decode(raw: Mapping[str, Any], message: Message, queue: QueueInfo) -> Sequence[Record] | None:
        records = decode_notification(raw["Body"])
        if records is None:
            return None
        keep = [
            r
            for r in records
            if record_bucket(r) == config.bucket
            and matches_s3_filter(r, config.events, config.prefix, config.suffix)
        ]
        skipped = len(records) - len(keep)
        if skipped and metrics is not None:
            # Never in a batch, so the dispatcher cannot count them: polled and filtered here.
            metrics.count("polled", skipped)
            metrics.count("filtered", skipped)
        arrived = sent_at(raw)
        return tuple(Record(s3_record_id(r), r, arrived, None, message) for r in keep)

    return decode


def s3_via_sqs_source(config: S3Source, ctx: SourceContext) -> SqsQueueSource:
    """The source for an `s3` event source whose notifications arrive through an SQS queue."""
    assert config.name is not None and config.via.sqs is not None
    if "maximum_retry_attempts" in config.model_fields_set:
        log.warning(
            "%s/%s: maximum_retry_attempts applies to via: mqtt only; via SQS the queue's redrive policy "
            "(maxReceiveCount) decides when a notification stops being retried",
            ctx.function.name,
            config.name,
        )
    metrics = ctx.metrics
    settings = QueueSettings(
        queue=config.via.sqs,
        batch_size=config.batch_size,
        batching_window=config.maximum_batching_window,
        report_batch_item_failures=config.report_batch_item_failures,
        concurrency=concurrency_ceiling(config.maximum_concurrency, ctx),
        backoff_base=config.retry_backoff.base,
        backoff_max=config.retry_backoff.max,
    )
    return SqsQueueSource(config.name, settings, ctx.aws, s3_decoder(config, metrics), metrics)


def dev_resources(config: EventSourceConfig, function: FunctionConfig, found: DevResources) -> None:
    """Dev mode creates the bucket and, via SQS, the queue it notifies (notifications are set up after)."""
    assert isinstance(config, S3Source)
    found.buckets.add(config.bucket)
    if config.via.sqs is not None:
        wait = config.maximum_batching_window
        found.queues[queue_name(config.via.sqs)] = int(VISIBILITY_FACTOR * function.timeout + wait)


# --- pipelined s3 setup-notifications --------------------------------------------------------------


def _notified_sources(config: Config) -> dict[str, list[tuple[str, S3Source]]]:
    """bucket -> [(function, source)] for every enabled `s3` source read via SQS."""
    found: dict[str, list[tuple[str, S3Source]]] = {}
    for function, fn in config.functions.items():
        for source in fn.events:
            if isinstance(source, S3Source) and source.via.sqs is not None and source.enabled:
                found.setdefault(source.bucket, []).append((function, source))
    return found


def _queue_policy(current: str | None, queue_arn: str, bucket: str) -> str:
    """The queue's policy plus a statement letting S3 send the bucket's notifications (replacing ours)."""
    policy: dict[str, Any] = json.loads(current) if current else {"Version": "2012-10-17", "Statement": []}
    sid = f"pipelined-s3-{bucket}"
    statements = [s for s in policy.get("Statement", []) if s.get("Sid") != sid]
    statements.append(
        {
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
        }
    )
    policy["Statement"] = statements
    return json.dumps(policy)


async def setup_notifications(config: Config, clients: AwsClients) -> list[str]:
    """Make every bucket of the config's `s3` sources (via SQS) notify its queue; one line per change.

    Notification entries are named `pipelined-FUNCTION-SOURCE`; other entries of the bucket are kept.
    """
    sqs = await clients.client("sqs")
    s3 = await clients.client("s3")
    done: list[str] = []
    for bucket, sources in _notified_sources(config).items():
        entries = []
        try:
            for function, source in sources:
                assert source.via.sqs is not None
                url = await resolve_queue_url(sqs, source.via.sqs)
                attributes = (
                    await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "Policy"])
                )["Attributes"]
                arn = attributes["QueueArn"]
                if arn.endswith(".fifo"):
                    raise SourceError(f"{function}/{source.name}: S3 cannot notify a FIFO queue ({arn})")
                policy = _queue_policy(attributes.get("Policy"), arn, bucket)
                await sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
                entry: dict[str, Any] = {
                    "Id": f"pipelined-{function}-{source.name}",
                    "QueueArn": arn,
                    "Events": list(source.events),
                }
                rules = [
                    {"Name": n, "Value": v}
                    for n, v in (("prefix", source.prefix), ("suffix", source.suffix))
                    if v
                ]
                if rules:
                    entry["Filter"] = {"Key": {"FilterRules": rules}}
                entries.append(entry)
                done.append(f"s3://{bucket} {', '.join(source.events)} -> {arn} ({function}/{source.name})")
            current = await s3.get_bucket_notification_configuration(Bucket=bucket)
            ours = {e["Id"] for e in entries}
            wanted = {
                key: value
                for key, value in current.items()
                if key in ("TopicConfigurations", "LambdaFunctionConfigurations", "EventBridgeConfiguration")
            }
            others = [q for q in current.get("QueueConfigurations", []) if q.get("Id") not in ours]
            wanted["QueueConfigurations"] = others + entries
            await s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=wanted)
        except SourceError:
            raise
        except Exception as exc:
            raise SourceError(f"setting up notifications of bucket {bucket}: {describe(exc)}") from exc
    return done
