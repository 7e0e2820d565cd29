"""Quantiles: nearest-rank helpers, and the native sketch for latencies and lags.

``LogHistogram`` (native/src/sketch.rs) is small, mergeable and deterministic: values land in
logarithmic buckets 2% wide, so any quantile is reported within 2% of a value that was observed,
with memory bounded by the value range (about 1,200 buckets from 1 us to 1 day), not by the
number of values.
"""

from __future__ import annotations

from stream_monitor._native import LogHistogram

__all__ = ["LogHistogram", "nearest_rank", "percentiles"]


def nearest_rank(ordered: list[float], q: float) -> float | None:
    """The ``q`` quantile of an already sorted list (nearest rank), or None when it is empty."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """p50/p95/p99 (nearest rank) and the sample count."""
    ordered = sorted(values)

    def pct(q: float) -> float | None:
        value = nearest_rank(ordered, q)
        return None if value is None else round(value, 1)

    return {"n": len(ordered), "p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99)}
