"""Embedded Metric Format -> Prometheus: the metrics handlers print as EMF JSON, exported on /metrics.

A handler using powertools `Metrics` or `aws-embedded-metrics` prints one JSON object per flush:
`{"_aws": {"Timestamp", "CloudWatchMetrics": [{"Namespace", "Dimensions": [[...]], "Metrics":
[{"Name", "Unit"}]}]}, "<dimension>": "value", "<metric>": number | [numbers]}`. CloudWatch turns it into
metrics; pipelined turns it into Prometheus series. The unit decides the type: Count is a counter (each
value is added), a time unit a histogram (in seconds), anything else a gauge (the last value).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger("pipelined.emf")

DEFAULT_MAX_SERIES = 1000
# Seconds, like pipelined_duration_seconds.
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
_TIME_UNITS = {"Seconds": 1.0, "Milliseconds": 1e-3, "Microseconds": 1e-6}
_INVALID = re.compile(r"[^a-zA-Z0-9_]+")
# CloudWatch's limits: a metric's values array holds at most 100 values, a dimension set 30 names.
_MAX_VALUES = 100


class EmfError(ValueError):
    """A JSON object with an `_aws` key that is not valid Embedded Metric Format."""


def sanitise(name: str) -> str:
    """A Prometheus-legal name part: runs of other characters become `_`, no leading digit."""
    clean = _INVALID.sub("_", name).strip("_")
    if not clean or clean[0].isdigit():
        clean = "_" + clean
    return clean


@dataclass(frozen=True, slots=True)
class Sample:
    """One metric value (or several) of one EMF blob, with its Prometheus name, type and labels."""

    name: str
    kind: str  # "counter" | "histogram" | "gauge"
    labels: tuple[tuple[str, str], ...]
    values: tuple[float, ...]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EmfError(f"{where}: value {value!r} is not a finite number")
    return float(value)


def parse(blob: Mapping[str, Any], function: str | None = None) -> list[Sample]:
    """The Prometheus samples an EMF blob describes; EmfError naming the field when it is malformed."""
    aws = blob.get("_aws")
    if not isinstance(aws, Mapping):
        raise EmfError("_aws: not an object")
    directives = aws.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        raise EmfError("_aws.CloudWatchMetrics: not an array")
    samples: list[Sample] = []
    for i, directive in enumerate(directives):
        where = f"_aws.CloudWatchMetrics[{i}]"
        if not isinstance(directive, Mapping):
            raise EmfError(f"{where}: not an object")
        namespace = directive.get("Namespace")
        if not isinstance(namespace, str) or not namespace:
            raise EmfError(f"{where}.Namespace: not a non-empty string")
        dimension_sets = directive.get("Dimensions", [[]])
        if not isinstance(dimension_sets, list) or not all(
            isinstance(names, list) and all(isinstance(n, str) for n in names) for names in dimension_sets
        ):
            raise EmfError(f"{where}.Dimensions: not an array of arrays of names")
        label_sets = [
            _labels(blob, names, function, f"{where}.Dimensions") for names in dimension_sets or [[]]
        ]
        metrics = directive.get("Metrics")
        if not isinstance(metrics, list):
            raise EmfError(f"{where}.Metrics: not an array")
        for j, definition in enumerate(metrics):
            mwhere = f"{where}.Metrics[{j}]"
            if not isinstance(definition, Mapping) or not isinstance(definition.get("Name"), str):
                raise EmfError(f"{mwhere}: not an object with a Name")
            metric = definition["Name"]
            unit = definition.get("Unit", "None")
            raw = blob.get(metric)
            if raw is None:
                raise EmfError(f"{mwhere}: no value for {metric!r} in the blob")
            listed = raw if isinstance(raw, list) else [raw]
            if not listed or len(listed) > _MAX_VALUES:
                raise EmfError(f"{metric}: expected 1 to {_MAX_VALUES} values, got {len(listed)}")
            values = tuple(_number(v, metric) for v in listed)
            name = f"{sanitise(namespace)}_{sanitise(metric)}"
            if unit == "Count":
                kind, name = "counter", name + "_total"
            elif unit in _TIME_UNITS:
                scale = _TIME_UNITS[unit]
                kind, name, values = "histogram", name + "_seconds", tuple(v * scale for v in values)
            else:
                kind = "gauge"
            samples.extend(Sample(name, kind, labels, values) for labels in label_sets)
    return samples


def _labels(
    blob: Mapping[str, Any], names: list[str], function: str | None, where: str
) -> tuple[tuple[str, str], ...]:
    labels: dict[str, str] = {}
    for name in names:
        value = blob.get(name)
        if value is None or isinstance(value, dict | list):
            raise EmfError(f"{where}: dimension {name!r} has no string value in the blob")
        labels[sanitise(name)] = str(value)
    # Which function printed it, unless the handler already has a dimension of that name.
    if function is not None:
        labels.setdefault("function", function)
    return tuple(sorted(labels.items()))


@dataclass(slots=True)
class _Series:
    value: float = 0.0
    count: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))


@dataclass(slots=True)
class _Family:
    kind: str
    series: dict[tuple[tuple[str, str], ...], _Series] = field(default_factory=dict)
    capped: bool = False


class EmfMetrics(Collector):
    """The EMF metrics handlers printed, as a Prometheus collector; at most `max_series` per metric."""

    def __init__(
        self, registry: CollectorRegistry | None = None, max_series: int = DEFAULT_MAX_SERIES
    ) -> None:
        self.max_series = max_series
        self._families: dict[str, _Family] = {}
        # Inline handlers print from their own threads.
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def observe(self, function: str | None, blob: Mapping[str, Any]) -> None:
        """Record a JSON object a handler printed, if it is EMF; a malformed blob is one warning."""
        if "_aws" not in blob:
            return
        try:
            samples = parse(blob, function)
        except EmfError as exc:
            log.warning("%s: malformed Embedded Metric Format blob ignored: %s", function or "handler", exc)
            return
        with self._lock:
            for sample in samples:
                self._record(function, sample)

    def _record(self, function: str | None, sample: Sample) -> None:
        family = self._families.get(sample.name)
        if family is None:
            family = self._families[sample.name] = _Family(sample.kind)
        elif family.kind != sample.kind:
            log.warning(
                "%s: EMF metric %s is a %s, not a %s (its unit changed); value ignored",
                function or "handler",
                sample.name,
                family.kind,
                sample.kind,
            )
            return
        series = family.series.get(sample.labels)
        if series is None:
            if len(family.series) >= self.max_series:
                if not family.capped:
                    family.capped = True
                    log.warning(
                        "EMF metric %s reached its cap of %d series (metrics.emf_max_series); values "
                        "with new dimension values are dropped from /metrics",
                        sample.name,
                        self.max_series,
                    )
                return
            series = family.series[sample.labels] = _Series()
        if sample.kind == "counter":
            series.value += sum(sample.values)
        elif sample.kind == "gauge":
            series.value = sample.values[-1]
        else:
            for value in sample.values:
                series.value += value
                series.count += 1
                for i, bound in enumerate(BUCKETS):
                    if value <= bound:
                        series.buckets[i] += 1

    def describe(self) -> Iterable[Metric]:
        # Nothing up front: the families exist only once handlers print them.
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            families = [(name, f.kind, list(f.series.items())) for name, f in self._families.items()]
        for name, kind, series in families:
            if kind == "counter":
                metric = Metric(name.removesuffix("_total"), "Embedded Metric Format counter", "counter")
                for labels, s in series:
                    metric.add_sample(name, dict(labels), s.value)
            elif kind == "gauge":
                metric = Metric(name, "Embedded Metric Format gauge", "gauge")
                for labels, s in series:
                    metric.add_sample(name, dict(labels), s.value)
            else:
                metric = Metric(name, "Embedded Metric Format histogram", "histogram")
                for labels, s in series:
                    base = dict(labels)
                    for bound, count in zip(BUCKETS, s.buckets, strict=True):
                        metric.add_sample(name + "_bucket", {**base, "le": _bound(bound)}, count)
                    metric.add_sample(name + "_bucket", {**base, "le": "+Inf"}, s.count)
                    metric.add_sample(name + "_count", base, s.count)
                    metric.add_sample(name + "_sum", base, s.value)
            yield metric


def _bound(value: float) -> str:
    return repr(float(value))
