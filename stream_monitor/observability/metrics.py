"""Prometheus metrics of one worker, on its own registry (several workers may share a process).

Counters and the batch histogram are updated by the worker as it goes; everything that is a
state rather than an event (consumer lag, checkpoint age, rates, assigned partitions) is read from
the worker when Prometheus scrapes, by :class:`_WorkerCollector`. Drift gauges take the latest
window summary per model and feature; their number is capped by ``http.max_series``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stream_monitor import __version__
from stream_monitor.events.alerts import AlertEvent, WindowSummary
from stream_monitor.observability.status import WorkerStatus

__all__ = ["WorkerMetrics"]

_RATE_WINDOW = 10.0  # seconds over which processing_rate is averaged


class WorkerMetrics:
    """Every series /metrics exposes for one worker."""

    def __init__(self, max_series: int = 5_000) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.max_series = max_series
        r = self.registry
        self.consumed = Counter(
            "stream_monitor_events_consumed",
            "Records taken from the input topics.",
            ["topic", "partition"],
            registry=r,
        )
        self.processed = Counter(
            "stream_monitor_events_processed",
            "Valid events fed to the monitors.",
            ["topic", "partition", "model"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "stream_monitor_events_dead_lettered",
            "Invalid events sent to the dead-letter topic, by the field at fault.",
            ["topic", "partition", "field"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "stream_monitor_batch_seconds",
            "Time to decode, monitor and publish one batch of one partition.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.alerts = Counter(
            "stream_monitor_alerts",
            "Alerts raised, by kind, severity and status.",
            ["kind", "severity", "status"],
            registry=r,
        )
        self.summaries = Counter(
            "stream_monitor_window_summaries", "Window summaries published.", registry=r
        )
        self.source_records = Counter(
            "stream_monitor_source_records",
            "Records of the Open Inference Protocol sources, by outcome: matched (pairs joined), "
            "produced (events), malformed, refused, expired, evicted, duplicate.",
            ["source", "outcome"],
            registry=r,
        )
        self.source_pending = Gauge(
            "stream_monitor_source_pending",
            "Requests and responses of a source waiting for their other half.",
            ["source"],
            registry=r,
        )
        self.series_dropped = Counter(
            "stream_monitor_metric_series_dropped",
            "Drift gauges not created because http.max_series was reached.",
            registry=r,
        )
        Gauge("stream_monitor_info", "Build information.", ["version"], registry=r).labels(
            __version__
        ).set(1)
        # The latest drift statistics and performance metrics per (model, segment), kept as
        # plain dicts when a summary comes and exposed as gauges when scraped: setting some 70
        # gauges a summary cost the worker's event loop 3% of its time at the benchmark's rate.
        self.latest_drift: dict[tuple[str, str], dict[str, dict[str, float | None]]] = {}
        self.latest_performance: dict[tuple[str, str], dict[str, float | None]] = {}
        self.series = 0  # drift and performance series kept so far
        self._alert_counts: dict[tuple[str, str, str], Any] = {}
        r.register(_SummaryCollector(self))
        self._recent: deque[tuple[float, int]] = deque()

    def attach(self, worker: WorkerStatus) -> None:
        """Read the worker's state at scrape time."""
        self.registry.register(_WorkerCollector(worker, self))

    def batch(self, topic: str, partition: int, records: int, seconds: float) -> None:
        """One batch of one partition is done."""
        self.consumed.labels(topic, str(partition)).inc(records)
        self.batch_seconds.observe(seconds)
        now = time.monotonic()
        self._recent.append((now, records))
        while self._recent and now - self._recent[0][0] > _RATE_WINDOW:
            self._recent.popleft()

    def rate(self) -> float:
        """Events per second over the last few seconds."""
        now = time.monotonic()
        recent = [(t, n) for t, n in self._recent if now - t <= _RATE_WINDOW]
        return sum(n for _, n in recent) / _RATE_WINDOW

    def alert(self, alert: AlertEvent) -> None:
        """Count one alert."""
        key = (alert.kind, alert.severity, alert.status)
        child = self._alert_counts.get(key)
        if child is None:  # a few kinds x severities x statuses: kept, not looked up each time
            child = self._alert_counts[key] = self.alerts.labels(*key)
        child.inc()

    def summary(self, summary: WindowSummary) -> None:
        """Keep the latest statistics of a window summary (gauges when scraped)."""
        self.summaries.inc()
        where = (summary.model_id, summary.segment or "")
        drift = self.latest_drift.get(where)
        if drift is None:
            drift = self.latest_drift[where] = {}
        for feature, stats in summary.drift.items():
            self._keep(drift, feature, stats)
        if summary.prediction_drift:
            self._keep(drift, "__prediction__", summary.prediction_drift)
        if summary.multivariate:
            self._keep(drift, "__joint__", summary.multivariate)
        if summary.performance:
            self._keep(self.latest_performance, where, summary.performance)

    def _keep(self, into: dict[Any, dict[str, Any]], key: Any, values: dict[str, Any]) -> None:
        """``into[key]`` updated with ``values``, within ``max_series`` series in all."""
        known = into.get(key)
        if known is None:
            if self.series + len(values) > self.max_series:
                self.series_dropped.inc(len(values))
                return
            into[key] = dict(values)
            self.series += len(values)
            return
        before = len(known)
        known.update(values)
        self.series += len(known) - before

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


class _SummaryCollector(Collector):
    """The latest drift statistics and performance metrics, as gauges."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        drift = GaugeMetricFamily(
            "stream_monitor_drift_statistic",
            "Latest drift statistic per model, feature and statistic (last closed window); "
            'segment is "" for all of the model\'s events, else e.g. channel=phone.',
            labels=["model", "feature", "statistic", "segment"],
        )
        for (model, segment), features in self.metrics.latest_drift.items():
            for feature, stats in features.items():
                for statistic, value in stats.items():
                    drift.add_metric([model, feature, statistic, segment], _gauge_value(value))
        yield drift
        performance = GaugeMetricFamily(
            "stream_monitor_performance",
            "Latest performance metric per model (last closed or revised window); segment as "
            "for drift.",
            labels=["model", "metric", "segment"],
        )
        for (model, segment), metrics in self.metrics.latest_performance.items():
            for metric, value in metrics.items():
                performance.add_metric([model, metric, segment], _gauge_value(value))
        yield performance


def _gauge_value(value: float | None) -> float:
    return math.nan if value is None else float(value)


class _WorkerCollector(Collector):
    """States read from the worker when scraped: lag, checkpoint age, rate, partitions."""

    def __init__(self, worker: WorkerStatus, metrics: WorkerMetrics) -> None:
        self.worker = worker
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "stream_monitor_consumer_lag",
            "Records in the partition after the next one this worker reads.",
            labels=["topic", "partition"],
        )
        for (topic, partition), value in sorted(self.worker.lags().items()):
            lag.add_metric([topic, str(partition)], value)
        yield lag
        age = GaugeMetricFamily(
            "stream_monitor_checkpoint_age_seconds",
            "Seconds since the partition's state was last checkpointed.",
            labels=["partition"],
        )
        for partition, seconds in sorted(self.worker.checkpoint_ages().items()):
            age.add_metric([str(partition)], seconds)
        yield age
        yield GaugeMetricFamily(
            "stream_monitor_processing_rate",
            "Events consumed per second, averaged over the last 10 s.",
            value=self.metrics.rate(),
        )
        yield GaugeMetricFamily(
            "stream_monitor_assigned_partitions",
            "Input partitions this worker owns.",
            value=len(self.worker.partitions),
        )
        yield GaugeMetricFamily(
            "stream_monitor_ready",
            "1 when /readyz answers 200.",
            value=1.0 if self.worker.readiness()[0] else 0.0,
        )
