"""Handlers for the log and metric tests: what they print and log is what Lambda users print and log.

Unchanged powertools `Metrics` usage: add_dimension + add_metric, flushed by @metrics.log_metrics;
aws-embedded-metrics as its README shows it (@metric_scope).
"""

import json
import logging

from aws_embedded_metrics import metric_scope
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

app_log = logging.getLogger("app")
metrics = Metrics(namespace="Shop", service="orders")


def fail(event, context):
    raise ValueError(f"boom {event.get('n')}")


def talk(event, context):
    """A bare JSON object, a plain line, a logging call and a logged exception."""
    print(json.dumps({"kind": "bare", "n": event.get("n")}))
    print(f"plain {event.get('n')}")
    app_log.info("info %s", event.get("n"), extra={"order": "o-1"})
    try:
        raise KeyError("missing")
    except KeyError:
        app_log.exception("lookup failed")
    return "ok"


@metrics.log_metrics
def measure(event, context):
    """Powertools Metrics as its documentation shows it, with a dimension from the event."""
    metrics.add_dimension(name="region", value=event.get("region", "eu"))
    metrics.add_metric(name="Orders", unit=MetricUnit.Count, value=event.get("orders", 1))
    metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=event.get("ms", 250))
    metrics.add_metric(name="Temperature", unit=MetricUnit.NoUnit, value=21.5)
    return "ok"


def malformed(event, context):
    print(json.dumps({"_aws": {"CloudWatchMetrics": "not an array"}, "x": 1}))
    return "ok"


@metric_scope
def embedded(event, context, metrics):
    metrics.set_namespace("Checkout")
    metrics.put_dimensions({"Stage": "beta"})
    metrics.put_metric("Payments", event.get("payments", 1), "Count")
    metrics.put_metric("PaymentTime", 120, "Milliseconds")
    return "ok"
