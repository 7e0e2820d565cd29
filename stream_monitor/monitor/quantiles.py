"""A small, mergeable, deterministic quantile sketch for latencies and lags.

Values land in logarithmic buckets 2% wide, so any quantile is reported within 2% of a value
that was observed, with memory bounded by the value range (about 1,200 buckets from 1 us to
1 day), not by the number of values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["LogHistogram", "nearest_rank"]

_GROWTH = 1.02
_LOG_GROWTH = math.log(_GROWTH)


def nearest_rank(ordered: list[float], q: float) -> float | None:
    """The ``q`` quantile of an already sorted list (nearest rank), or None when it is empty."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class LogHistogram:
    """Counts of non-negative values in 2%-wide logarithmic buckets (zero has its own bucket)."""

    __slots__ = ("buckets", "count", "maximum", "zeros")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.zeros = 0
        self.count = 0
        self.maximum = 0.0

    def add(self, value: float) -> None:
        """Record one value; negative values count as zero."""
        self.count += 1
        if value <= 0:
            self.zeros += 1
            return
        self.maximum = max(self.maximum, value)
        key = math.floor(math.log(value) / _LOG_GROWTH)
        self.buckets[key] = self.buckets.get(key, 0) + 1

    def add_many(self, values: Sequence[float]) -> None:
        """Record several values (as :meth:`add` one by one, with zeros counted at once)."""
        positive = [v for v in values if v > 0]
        self.count += len(values)
        self.zeros += len(values) - len(positive)
        if not positive:
            return
        self.maximum = max(self.maximum, *positive)
        buckets = self.buckets
        log = math.log
        for value in positive:
            key = math.floor(log(value) / _LOG_GROWTH)
            buckets[key] = buckets.get(key, 0) + 1

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0..1), as the upper bound of its bucket; None when empty."""
        if self.count == 0:
            return None
        rank = max(1, math.ceil(q * self.count))
        if rank <= self.zeros:
            return 0.0
        seen = self.zeros
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen >= rank:
                return min(_GROWTH ** (key + 1), self.maximum)
        return self.maximum  # pragma: no cover - rank never exceeds count

    def percentiles(self) -> dict[str, float | None]:
        """p50, p95, p99 and max."""
        if self.count == 0:
            return {}
        return {
            "p50": self.quantile(0.5),
            "p95": self.quantile(0.95),
            "p99": self.quantile(0.99),
            "max": self.maximum,
        }
