"""Lambda's partial batch response rules: which records of a batch an invocation's result fails."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipelined.core.lambda_errors import LambdaError
from pipelined.core.records import Batch, PartialFailureMode, Record
from pipelined.invoke.service import InvokeResult


@dataclass(frozen=True, slots=True)
class ResponseSplit:
    """How one invocation's result divides a batch."""

    succeeded: tuple[Record, ...]
    failed: tuple[Record, ...]
    # True when the handler raised or timed out (bisect only splits on function errors).
    function_error: bool
    # The function's error, or pipelined's for an invalid or partial response; None when all succeeded.
    error: LambdaError | None = None
    # An invalid response's itemIdentifier that names no record of the batch.
    unknown_id: str | None = None


def invalid_response(reason: str) -> LambdaError:
    """The error object for a batchItemFailures response Lambda would reject."""
    return LambdaError("InvalidResponse", f"invalid batchItemFailures response: {reason}", None)


def split_result(batch: Batch, result: InvokeResult) -> ResponseSplit:
    """Apply Lambda's partial batch response rules to one invocation's result."""
    records = batch.records
    if result.error is not None:
        return ResponseSplit((), records, True, result.error)
    mode = batch.partial_failure_mode
    value = result.value
    if mode is None or value is None:
        return ResponseSplit(records, (), False)
    if not isinstance(value, Mapping):
        return ResponseSplit(
            (), records, True, invalid_response(f"expected an object, got {type(value).__name__}")
        )
    items = value.get("batchItemFailures")
    if items is None or items == []:
        return ResponseSplit(records, (), False)
    if not isinstance(items, list):
        return ResponseSplit((), records, True, invalid_response("batchItemFailures is not a list"))
    # Ids may repeat (two S3 records of one key): reporting one fails every record that has it.
    positions: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        positions.setdefault(record.id, []).append(index)
    failed_positions: set[int] = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(identifier, str) or identifier not in positions:
            return ResponseSplit(
                (),
                records,
                True,
                invalid_response(f"unknown itemIdentifier {identifier!r}"),
                identifier if isinstance(identifier, str) else None,
            )
        failed_positions.update(positions[identifier])
    error = LambdaError("PartialFailure", f"{len(failed_positions)} item(s) reported failed", None)
    if mode is PartialFailureMode.FROM_LOWEST:
        lowest = min(failed_positions)
        return ResponseSplit(records[:lowest], records[lowest:], False, error)
    succeeded = tuple(r for i, r in enumerate(records) if i not in failed_positions)
    failed = tuple(r for i, r in enumerate(records) if i in failed_positions)
    return ResponseSplit(succeeded, failed, False, error)
