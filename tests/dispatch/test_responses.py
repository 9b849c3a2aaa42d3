"""Lambda's partial batch response rules, on the records a source hands the dispatcher."""

from __future__ import annotations

from pipelined.core.records import Batch, PartialFailureMode, Record
from pipelined.dispatch.responses import split_result
from pipelined.invoke.service import InvokeResult


def _batch(*ids: str) -> Batch:
    records = tuple(Record(i, {"n": n}, 0.0) for n, i in enumerate(ids))
    return Batch(records, partial_failure_mode=PartialFailureMode.ITEMS)


def _reply(*failed: str) -> InvokeResult:
    return InvokeResult("req", {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}, None, 1.0)


def test_reported_items_fail_and_the_rest_succeed() -> None:
    split = split_result(_batch("a", "b", "c"), _reply("b"))
    assert [r.id for r in split.failed] == ["b"] and [r.id for r in split.succeeded] == ["a", "c"]


def test_an_identifier_shared_by_two_records_fails_both() -> None:
    # Two S3 records of one key in a batch (a put, then a delete): neither may be taken as handled.
    split = split_result(_batch("photos/a.jpg", "photos/b.jpg", "photos/a.jpg"), _reply("photos/a.jpg"))
    assert [r.payload["n"] for r in split.failed] == [0, 2]
    assert [r.payload["n"] for r in split.succeeded] == [1]


def test_an_unknown_identifier_fails_the_whole_batch() -> None:
    split = split_result(_batch("a", "b"), _reply("zzz"))
    assert len(split.failed) == 2 and split.unknown_id == "zzz"
    assert split.error is not None and "unknown itemIdentifier 'zzz'" in split.error.error_message
