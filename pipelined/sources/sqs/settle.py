"""Settling an SQS batch: which messages to delete or return, the retry backoff, and the batch calls."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from pipelined.aws import describe
from pipelined.core.records import Outcome
from pipelined.core.retry import backoff
from pipelined.sources.sqs.records import Message

MAX_PER_CALL = 10  # entries per *Batch call (and messages per ReceiveMessage)
MAX_VISIBILITY = 43200  # SQS's limit: 12 hours
ATTEMPTS = 3


def retry_delay(receive_count: int, base: float, maximum: float, rng: random.Random | None = None) -> int:
    """Seconds a failed message stays invisible: base * 2^(n-1) capped at maximum, "equal" jitter.

    Half the delay is fixed so the receive count visibly spaces out retries; SQS takes whole seconds.
    """
    delay = backoff(max(receive_count, 1) - 1, base, maximum, "equal", rng)
    return min(MAX_VISIBILITY, math.ceil(delay))


def plan_settlement(
    messages: Sequence[Message], expected: Mapping[Message, int], outcome: Outcome, fifo: bool
) -> tuple[list[Message], list[Message]]:
    """Which messages of a batch to delete and which to return (with backoff), in batch order.

    A message is deleted when every one of its records succeeded, was filtered or dead-lettered. A
    failed record fails its message, and every record sharing its id (S3 ids may repeat). On a FIFO
    queue the first message of a group that is not deleted stops the group: all later messages of
    that group are returned too, so the group is processed in order.
    """
    failed_ids = {r.id for r in outcome.failed}
    failed: set[Message] = {r.settle_token for r in outcome.failed}
    done: dict[Message, int] = {}
    for record in (*outcome.succeeded, *outcome.filtered, *outcome.dead_lettered):
        if record.id in failed_ids:
            failed.add(record.settle_token)
        else:
            done[record.settle_token] = done.get(record.settle_token, 0) + 1
    delete: list[Message] = []
    retry: list[Message] = []
    stopped: set[str | None] = set()
    for message in messages:
        if fifo and message.group_id in stopped:
            retry.append(message)
            continue
        if message in failed or message not in expected:  # not in expected: not decodable
            retry.append(message)
        elif done.get(message, 0) >= expected[message]:
            delete.append(message)
            continue
        # (Neither: its delivery was abandoned; it comes back after its visibility timeout.)
        if fifo:
            stopped.add(message.group_id)
    return delete, retry


def _chunks(items: Sequence[Message]) -> Iterator[Sequence[Message]]:
    for start in range(0, len(items), MAX_PER_CALL):
        yield items[start : start + MAX_PER_CALL]


async def delete_messages(sqs: Any, url: str, messages: Sequence[Message]) -> tuple[int, str]:
    """DeleteMessageBatch in chunks of ten, retrying entries SQS reports failed; (deleted, problem)."""
    results = await asyncio.gather(
        *(_batch_call(sqs, url, c, "delete_message_batch") for c in _chunks(messages))
    )
    deleted = sum(n for n, _ in results)
    problems = [p for _, p in results if p]
    return deleted, (f"{len(messages) - deleted} message(s) not deleted ({problems[0]})" if problems else "")


async def change_visibility(
    sqs: Any, url: str, messages: Sequence[Message], timeout: Callable[[Message], int]
) -> str:
    """ChangeMessageVisibilityBatch in chunks of ten, `timeout(message)` seconds each; a problem or ""."""
    results = await asyncio.gather(
        *(_batch_call(sqs, url, c, "change_message_visibility_batch", timeout) for c in _chunks(messages))
    )
    problems = [p for _, p in results if p]
    return f"visibility of {len(messages)} message(s) not changed ({problems[0]})" if problems else ""


async def _batch_call(
    sqs: Any,
    url: str,
    chunk: Sequence[Message],
    operation: str,
    timeout: Callable[[Message], int] | None = None,
) -> tuple[int, str]:
    """One *Batch call for up to ten messages, re-sending entries SQS reports failed; (succeeded, problem)."""
    pending = {str(i): m for i, m in enumerate(chunk)}
    succeeded = 0
    problem = ""
    for attempt in range(ATTEMPTS):
        if attempt:
            await asyncio.sleep(0.2 * 2**attempt)
        problem = ""
        entries: list[dict[str, Any]] = [
            {"Id": i, "ReceiptHandle": m.receipt_handle} for i, m in pending.items()
        ]
        if timeout is not None:
            for entry in entries:
                entry["VisibilityTimeout"] = timeout(pending[entry["Id"]])
        try:
            response = await getattr(sqs, operation)(QueueUrl=url, Entries=entries)
        except Exception as exc:
            # botocore has already retried the call itself (throttling, network); don't multiply that.
            problem = describe(exc)
            break
        for entry in response.get("Successful", []):
            if pending.pop(entry["Id"], None) is not None:
                succeeded += 1
        retryable = {}
        for entry in response.get("Failed", []):
            problem = f"{entry.get('Code')}: {entry.get('Message', '')}"
            # A sender fault (an expired receipt handle, ...) fails again however often it is sent.
            if not entry.get("SenderFault") and entry["Id"] in pending:
                retryable[entry["Id"]] = pending[entry["Id"]]
        pending = retryable
        if not pending:
            break
    return succeeded, problem
