from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from pipelined.aws import AwsClients
from pipelined.config import AwsConfig, FunctionConfig
from pipelined.core.filtering import compile_patterns
from pipelined.core.records import Batch, PartialFailureMode, Record
from pipelined.core.retry import RetryPolicy
from pipelined.dispatch.destinations import SqliteDestination, SqsDestination
from pipelined.dispatch.runner import SourceRunner
from pipelined.errors import DestinationError
from pipelined.functions.function import Function
from pipelined.invoke.service import InvocationKind, InvokeService
from pipelined.observe.metrics import Metrics
from pipelined.sources.memory import MemorySource
from pipelined.state import StateStore
from tests.support import TEST_FUNCTIONS, TEST_ISOLATION, invoke, until


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[StateStore]:
    store = await StateStore.open(tmp_path / "state")
    yield store
    await store.close()


_RUNTIMES: list[Function] = []


@pytest_asyncio.fixture(autouse=True, loop_scope="function")
async def _close_runtimes() -> AsyncIterator[None]:
    """Stop the worker processes of every runtime a test made (process isolation, the default)."""
    yield
    while _RUNTIMES:
        await _RUNTIMES.pop().close(0)


def runtime(handler: str, **options: Any) -> Function:
    if TEST_ISOLATION:
        options["isolation"] = TEST_ISOLATION
    if options.get("isolation") != "inline":  # the default: the handler module lives in a worker
        calls_file = Path(tempfile.mkdtemp()) / "calls.jsonl"
        options["environment"] = {"CALLS_FILE": str(calls_file), **options.get("environment", {})}
    config = FunctionConfig(handler=f"batch_handlers.{handler}", code=TEST_FUNCTIONS, **options)
    fn = Function("fn", config, "eu-west-1")
    fn.load()
    _RUNTIMES.append(fn)
    return fn


def runner(fn: Function, source: MemorySource, state: StateStore | None = None, **kw: Any) -> SourceRunner:
    metrics = Metrics()
    destination = SqliteDestination(state) if state is not None else None
    caller = InvokeService(metrics).caller(fn, source.name, InvocationKind.EVENT_SOURCE)
    r = SourceRunner(caller, source, metrics.for_source(fn.name, source.name), destination, **kw)
    r.metrics_registry = metrics  # type: ignore[attr-defined]
    return r


def value(r: SourceRunner, name: str, **labels: str) -> float:
    registry = r.metrics_registry  # type: ignore[attr-defined]
    result = registry.registry.get_sample_value(name, {"function": "fn", "source": r.source.name, **labels})
    return float(result or 0.0)


def batch_of(
    *payloads: dict[str, Any],
    mode: PartialFailureMode | None = PartialFailureMode.ITEMS,
    arrived_at: float | None = None,
) -> Batch:
    now = time.time() if arrived_at is None else arrived_at
    return Batch(tuple(Record(p["id"], p, now) for p in payloads), partial_failure_mode=mode)


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def calls(r: SourceRunner) -> list[list[str]]:
    """The batches (record ids) the handler module saw, as the loaded module recorded them."""
    calls_file = r.function.config.environment.get("CALLS_FILE")
    if calls_file is not None:  # isolation: process
        return [json.loads(line) for line in read_lines(Path(calls_file))]
    handler = r.function.handler
    assert handler is not None
    return handler.__globals__["CALLS"]  # type: ignore[no-any-return]


# --- batchItemFailures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "response", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, {"statusCode": 200}]
)
async def test_full_success_responses_succeed_every_record(response: Any) -> None:
    r = runner(runtime("reply"), MemorySource())
    outcome = await r.deliver(batch_of({"id": "a", "response": response}, {"id": "b"}))
    assert [x.id for x in outcome.succeeded] == ["a", "b"]
    assert outcome.failed == ()


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]},
        {"batchItemFailures": [{"itemId": "a"}]},
        {"batchItemFailures": "a"},
        "a string",
        ["a"],
    ],
)
async def test_invalid_partial_responses_fail_the_whole_batch(response: Any) -> None:
    r = runner(runtime("reply"), MemorySource())
    outcome = await r.deliver(batch_of({"id": "a", "response": response}, {"id": "b"}))
    assert [x.id for x in outcome.failed] == ["a", "b"]
    assert outcome.succeeded == ()
    assert outcome.error is not None and outcome.error.error_type == "InvalidResponse"


async def test_reported_items_fail_and_the_rest_succeed() -> None:
    r = runner(runtime("report_marked"), MemorySource())
    outcome = await r.deliver(batch_of({"id": "a"}, {"id": "b", "fail": True}, {"id": "c"}))
    assert [x.id for x in outcome.succeeded] == ["a", "c"]
    assert [x.id for x in outcome.failed] == ["b"]
    assert value(r, "pipelined_events_total", outcome="failed") == 1
    assert value(r, "pipelined_events_total", outcome="succeeded") == 2


async def test_stream_mode_retries_from_the_lowest_reported_record() -> None:
    r = runner(runtime("report_marked"), MemorySource())
    b = batch_of(
        {"id": "1"},
        {"id": "2"},
        {"id": "3", "fail": True},
        {"id": "4"},
        {"id": "5", "fail": True},
        mode=PartialFailureMode.FROM_LOWEST,
    )
    outcome = await r.deliver(b)
    assert [x.id for x in outcome.succeeded] == ["1", "2"]
    assert [x.id for x in outcome.failed] == ["3", "4", "5"]


async def test_return_value_is_ignored_without_report_batch_item_failures() -> None:
    r = runner(runtime("report_marked"), MemorySource())
    outcome = await r.deliver(batch_of({"id": "a", "fail": True}, mode=None))
    assert [x.id for x in outcome.succeeded] == ["a"]


# --- retries, bisect, age, dead letters --------------------------------------------------------------


async def test_failed_batch_is_retried_then_dead_lettered_with_the_failure_record(
    state: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "pipelined.lambda")
    policy = RetryPolicy(maximum_retry_attempts=2, backoff_base=0.01, backoff_max=0.02)
    r = runner(runtime("poison"), MemorySource(retry_policy=policy), state)
    outcome = await r.deliver(batch_of({"id": "a", "poison": True}))
    assert [x.id for x in outcome.dead_lettered] == ["a"]
    assert calls(r) == [["a"], ["a"], ["a"]]
    [entry] = await state.dead_letters.list()
    assert entry.function == "fn" and entry.attempts == 3 and entry.condition == "RetriesExhausted"
    assert entry.event == {"Records": [{"id": "a", "poison": True}]}
    assert entry.error is not None and entry.error["errorType"] == "ValueError"
    record = entry.failure_record
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    arn = "arn:aws:lambda:eu-west-1:000000000000:function:fn"
    assert record["requestContext"]["functionArn"] == arn + ":$LATEST"
    # The request id of the last attempt: the one on its START line.
    starts = [r.getMessage().split()[2] for r in caplog.records if r.getMessage().startswith("START ")]
    assert len(starts) == 3 and record["requestContext"]["requestId"] == starts[-1]
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["requestPayload"] == entry.event
    assert record["responsePayload"]["errorMessage"] == "poison record in batch"
    assert value(r, "pipelined_events_total", outcome="retried") == 2
    assert value(r, "pipelined_events_total", outcome="dead_lettered") == 1
    assert value(r, "pipelined_errors_total") == 3
    assert value(r, "pipelined_invocations_total") == 3


async def test_bisect_isolates_the_poison_record_without_counting_splits_as_retries(
    state: StateStore,
) -> None:
    policy = RetryPolicy(
        maximum_retry_attempts=0,
        bisect_on_error=True,
        attempts_condition="RetryAttemptsExhausted",
        age_condition="RecordAgeExceeded",
    )
    r = runner(runtime("poison"), MemorySource(retry_policy=policy), state)
    payloads = [{"id": str(i), "poison": i == 5} for i in range(8)]
    outcome = await r.deliver(batch_of(*payloads, mode=PartialFailureMode.FROM_LOWEST))
    assert [x.id for x in outcome.dead_lettered] == ["5"]
    assert sorted(x.id for x in outcome.succeeded) == ["0", "1", "2", "3", "4", "6", "7"]
    # 8 -> 4+4 -> (4 ok) 2+2 -> (2 ok) 1+1 -> 5 fails alone, 4 retries counted zero times.
    assert calls(r)[0] == [str(i) for i in range(8)]
    assert ["5"] in calls(r)
    [entry] = await state.dead_letters.list()
    assert entry.condition == "RetryAttemptsExhausted" and entry.attempts == 1


async def test_records_past_maximum_age_are_not_invoked(state: StateStore) -> None:
    policy = RetryPolicy(maximum_retry_attempts=-1, maximum_record_age=60, age_condition="RecordAgeExceeded")
    r = runner(runtime("poison"), MemorySource(retry_policy=policy), state)
    outcome = await r.deliver(batch_of({"id": "old"}, arrived_at=time.time() - 120))
    assert [x.id for x in outcome.dead_lettered] == ["old"]
    assert calls(r) == []
    [entry] = await state.dead_letters.list()
    assert entry.condition == "RecordAgeExceeded"


async def test_undeliverable_failure_record_leaves_records_failed_not_lost(tmp_path: Path) -> None:
    policy = RetryPolicy(maximum_retry_attempts=0)
    clients = AwsClients(AwsConfig(region="us-east-1", endpoint_url="http://127.0.0.1:9"), max_attempts=1)
    try:
        metrics = Metrics()
        source = MemorySource(retry_policy=policy)
        fn = runtime("poison")
        r = SourceRunner(
            InvokeService(metrics).caller(fn, "memory", InvocationKind.EVENT_SOURCE),
            source,
            metrics.for_source("fn", "memory"),
            SqsDestination(clients, "http://127.0.0.1:9/000000000000/dlq"),
        )
        outcome = await r.deliver(batch_of({"id": "a", "poison": True}))
    finally:
        await clients.close()
    assert [x.id for x in outcome.failed] == ["a"]
    assert outcome.dead_lettered == ()
    assert (
        metrics.registry.get_sample_value(
            "pipelined_dead_letter_errors_total", {"function": "fn", "source": "memory"}
        )
        == 1
    )


class _UnreachableDestination:
    async def send(self, failed: Any) -> None:
        raise DestinationError("destination unreachable")


async def test_bisect_holds_back_the_rest_when_a_half_is_left_for_redelivery() -> None:
    # A stream must never run records past one it has not finished: once the poison record cannot be
    # parked, everything after it stays failed, uninvoked, for the source to redeliver in order.
    policy = RetryPolicy(maximum_retry_attempts=0, bisect_on_error=True)
    fn = runtime("poison")
    metrics = Metrics()
    r = SourceRunner(
        InvokeService(metrics).caller(fn, "m", InvocationKind.EVENT_SOURCE),
        MemorySource(retry_policy=policy),
        metrics.for_source("fn", "m"),
        _UnreachableDestination(),
    )
    payloads = [{"id": str(i), "poison": i == 1} for i in range(8)]
    outcome = await r.deliver(batch_of(*payloads, mode=PartialFailureMode.FROM_LOWEST))
    assert [x.id for x in outcome.succeeded] == ["0"]
    assert [x.id for x in outcome.failed] == [str(i) for i in range(1, 8)]
    assert calls(r) == [[str(i) for i in range(8)], ["0", "1", "2", "3"], ["0", "1"], ["0"], ["1"]]


# --- filtering, concurrency, timeouts ------------------------------------------------------------------


async def test_filtered_records_are_settled_without_invocation() -> None:
    r = runner(
        runtime("poison"), MemorySource(), event_filter=compile_patterns([{"body": {"kind": ["order"]}}])
    )
    b = Batch(
        (
            Record("1", {"id": "1"}, time.time(), {"body": {"kind": "order"}}),
            Record("2", {"id": "2"}, time.time(), {"body": {"kind": "noise"}}),
        )
    )
    outcome = await r.deliver(b)
    assert [x.id for x in outcome.succeeded] == ["1"]
    assert [x.id for x in outcome.filtered] == ["2"]
    assert calls(r) == [["1"]]
    assert value(r, "pipelined_events_total", outcome="filtered") == 1


async def test_reserved_concurrency_limits_in_flight_invocations_and_counts_throttles() -> None:
    fn = runtime("sleep_async", reserved_concurrency=1)
    source = MemorySource(batch_size=1, concurrency=3)
    r = runner(fn, source)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, fn.in_flight)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    for i in range(3):
        source.put({"id": str(i), "sleep": 0.1})
    await r.start()
    await until(lambda: len(source.settled.ids("succeeded")) == 3, timeout=5)
    await r.stop(5)
    watcher.cancel()
    assert peak == 1
    assert value(r, "pipelined_throttles_total") >= 1


async def test_stuck_sync_handler_times_out_without_blocking_the_loop() -> None:
    fn = runtime("sleep_sync", timeout=1)
    r = runner(fn, MemorySource())
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    outcome = await r.deliver(batch_of({"id": "a", "sleep": 3}, mode=None))
    elapsed = time.monotonic() - started
    ticker.cancel()
    assert outcome.error is not None and outcome.error.payload() == {
        "errorMessage": "Task timed out after 1.00 seconds",
        "errorType": "Sandbox.Timedout",
        "stackTrace": [],
    }
    assert elapsed < 1.5
    assert ticks > 50  # the event loop kept running while the thread was stuck


async def test_function_environment_is_visible_only_during_its_invocations() -> None:
    import os

    fn = runtime("environment", environment={"GREETING": "bonjour"})
    result = await invoke(fn, {})
    assert result.value == {
        "GREETING": "bonjour",
        "AWS_LAMBDA_FUNCTION_NAME": "fn",
        "_HANDLER": "batch_handlers.environment",
        "AWS_REGION": "eu-west-1",
    }
    assert os.environ.get("GREETING") is None


async def test_async_handler_timeout_is_enforced() -> None:
    fn = runtime("sleep_async", timeout=1)
    result = await invoke(fn, {"Records": [{"sleep": 5}]})
    assert result.error is not None and result.error.error_type == "Sandbox.Timedout"
