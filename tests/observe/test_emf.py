"""Embedded Metric Format blobs printed by handlers become Prometheus series on /metrics."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from pipelined.observe.emf import EmfMetrics
from tests.http.support import lambda_client
from tests.support import DaemonProcess, wait_until, write_config


def blob(**values: Any) -> dict[str, Any]:
    """What aws-embedded-metrics prints: two dimension sets, a values array, a second directive."""
    return {
        "_aws": {
            "Timestamp": 1700000000000,
            "CloudWatchMetrics": [
                {
                    "Namespace": "aws-embedded-metrics",
                    "Dimensions": [["ServiceName"], ["ServiceName", "ServiceType"]],
                    "Metrics": [{"Name": "ProcessingLatency", "Unit": "Milliseconds"}],
                },
                {
                    "Namespace": "Shop",
                    "Dimensions": [[]],
                    "Metrics": [{"Name": "Queue.Depth", "Unit": "Count"}],
                },
            ],
        },
        "ServiceName": "svc",
        "ServiceType": "AWS::Lambda::Function",
        "ProcessingLatency": [100, 300],
        "Queue.Depth": 4,
        **values,
    }


def test_units_decide_the_type_and_every_dimension_set_is_a_series() -> None:
    registry = CollectorRegistry()
    emf = EmfMetrics(registry)
    emf.observe("fn", blob())
    emf.observe("fn", blob(**{"Queue.Depth": 6, "ProcessingLatency": 2000}))
    one = {"ServiceName": "svc", "function": "fn"}
    two = {**one, "ServiceType": "AWS::Lambda::Function"}
    name = "aws_embedded_metrics_ProcessingLatency_seconds"
    for labels in (one, two):
        # Milliseconds -> seconds in a histogram: 0.1 and 0.3, then 2.0.
        assert registry.get_sample_value(name + "_count", labels) == 3
        assert registry.get_sample_value(name + "_sum", labels) == pytest.approx(2.4)
        assert registry.get_sample_value(name + "_bucket", {**labels, "le": "0.25"}) == 1
        assert registry.get_sample_value(name + "_bucket", {**labels, "le": "+Inf"}) == 3
    # Count -> a counter: values are added up.
    assert registry.get_sample_value("Shop_Queue_Depth_total", {"function": "fn"}) == 10


def test_a_malformed_blob_is_one_warning_and_nothing_else(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    emf = EmfMetrics(registry)
    bad = blob()
    bad["_aws"]["CloudWatchMetrics"][1]["Metrics"] = [{"Name": "Missing", "Unit": "Count"}]
    with caplog.at_level(logging.WARNING, "pipelined.emf"):
        emf.observe("fn", bad)
        emf.observe("fn", {"_aws": "no"})
        emf.observe("fn", blob(**{"Queue.Depth": "four"}))
        emf.observe("fn", {"not": "emf"})
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert "Metrics[0]: no value for 'Missing'" in messages[0] and messages[0].startswith("fn: malformed")
    assert "_aws: not an object" in messages[1] and "'four' is not a finite number" in messages[2]
    # A blob is recorded whole or not at all: the valid first directive of `bad` left nothing either.
    assert [s for m in registry.collect() for s in m.samples] == []


def test_the_cardinality_cap_keeps_existing_series_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    emf = EmfMetrics(registry, max_series=2)
    with caplog.at_level(logging.WARNING, "pipelined.emf"):
        for user in ("a", "b", "c", "d", "a"):
            emf.observe("fn", _per_user(user))
    series = {s.labels["user"]: s.value for m in registry.collect() for s in m.samples}
    assert series == {"a": 2, "b": 1}
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("EMF metric App_Logins_total reached its cap of 2 series")


def _per_user(user: str) -> dict[str, Any]:
    metrics = [
        {"Namespace": "App", "Dimensions": [["user"]], "Metrics": [{"Name": "Logins", "Unit": "Count"}]}
    ]
    return {"_aws": {"Timestamp": 0, "CloudWatchMetrics": metrics}, "user": user, "Logins": 1}


def test_powertools_and_aws_embedded_metrics_from_process_workers_reach_metrics(tmp_path: Path) -> None:
    functions = {
        "measure": {"handler": "log_handlers.measure", "isolation": "process"},
        "malformed": {"handler": "log_handlers.malformed", "isolation": "process"},
        "embedded": {"handler": "log_handlers.embedded", "isolation": "process"},
    }
    config = write_config(tmp_path, functions, metrics={"emf_max_series": 2})
    process = DaemonProcess(config).start()
    try:
        client = lambda_client(process)
        for event in (
            {"region": "eu", "orders": 2, "ms": 250},
            {"region": "eu", "orders": 3, "ms": 1500},
            {"region": "us", "orders": 4, "ms": 20},
            {"region": "ap", "orders": 9},  # a third series: over the cap
        ):
            response = client.invoke(FunctionName="measure", Payload=json.dumps(event).encode())
            assert json.loads(response["Payload"].read()) == "ok"
        eu = {"function": "measure", "service": "orders", "region": "eu"}
        us = {**eu, "region": "us"}
        wait_until(
            lambda: process.metric("Shop_Orders_total", **us) == 4, timeout=10, message="EMF on /metrics"
        )
        assert process.metric("Shop_Orders_total", **eu) == 5
        assert process.metric("Shop_Latency_seconds_count", **eu) == 2
        assert process.metric("Shop_Latency_seconds_sum", **eu) == pytest.approx(1.75)
        assert process.metric("Shop_Latency_seconds_bucket", **eu, le="0.25") == 1
        assert process.metric("Shop_Temperature", **eu) == 21.5
        assert process.metric("Shop_Orders_total", **{**eu, "region": "ap"}) == 0
        logs = process.logs()
        # The blob itself stays in the log as the bare line powertools printed.
        assert any(line.startswith('{"_aws":') and '"region":"us"' in line for line in logs.splitlines())
        assert logs.count("EMF metric Shop_Orders_total reached its cap of 2 series") == 1
        for payments in (3, 4):
            client.invoke(FunctionName="embedded", Payload=json.dumps({"payments": payments}).encode())
        beta = {"function": "embedded", "Stage": "beta", "ServiceType": "AWS::Lambda::Function"}
        wait_until(lambda: process.metric("Checkout_Payments_total", **beta) == 7, timeout=10)
        assert process.metric("Checkout_PaymentTime_seconds_sum", **beta) == pytest.approx(0.24)
        response = client.invoke(FunctionName="malformed", Payload=b"{}")
        assert json.loads(response["Payload"].read()) == "ok"
        wait_until(lambda: "malformed Embedded Metric Format blob ignored" in process.logs(), timeout=10)
        assert "_aws.CloudWatchMetrics: not an array" in process.logs()
        assert process.get("/healthz")[0] == 200
    finally:
        process.stop()
