"""Per-window accumulators of one feature: binned counts for drift, counters for data quality.

Memory is fixed by the reference's bins, never by the number of events. Bad values are counted
(missing, non-finite, type mismatch), never raised.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from stream_monitor.monitor.reference import (
    CategoricalReference,
    NumericReference,
    category_of,
)
from stream_monitor.monitor.statistics import (
    chi_square,
    jensen_shannon,
    ks_binned,
    psi,
    wasserstein_binned,
)

__all__ = ["CategoricalAccumulator", "NumericAccumulator", "Stats"]

Stats = dict[str, float | None]


def _finite(stats: dict[str, float]) -> Stats:
    """Statistics that overflowed (values near the float limit) are reported as unknown."""
    return {name: value if math.isfinite(value) else None for name, value in stats.items()}


class _FeatureCounts:
    """Counters every feature accumulator keeps: usable, missing, non-finite, mismatched."""

    __slots__ = ("invalid", "missing", "n", "non_finite")

    def __init__(self) -> None:
        self.n = self.missing = self.non_finite = self.invalid = 0

    def mark_non_finite(self) -> None:
        """Re-file one missing value as non-finite (the codec turned NaN/Infinity into None)."""
        self.missing -= 1
        self.non_finite += 1

    def _rates(self, events: int) -> Stats:
        return {
            "missing_rate": self.missing / events,
            "non_finite_rate": self.non_finite / events,
            "type_mismatch_rate": self.invalid / events,
        }


class NumericAccumulator(_FeatureCounts):
    """Counts of one numeric feature in one window, binned on the reference's percentiles."""

    __slots__ = ("bins", "edges", "maximum", "minimum", "out_of_range", "reference")

    def __init__(self, reference: NumericReference | None) -> None:
        self.reference = reference
        self.edges = reference.edges if reference else ()
        self.bins = [0] * len(reference.counts) if reference else []
        self.minimum = reference.minimum if reference else -math.inf
        self.maximum = reference.maximum if reference else math.inf
        super().__init__()
        self.out_of_range = 0

    def add(self, value: Any) -> None:
        """Count one value (None means missing)."""
        if value is None:
            self.missing += 1
            return
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                self.non_finite += 1
                return
        elif kind is not int and kind is not bool:
            self.invalid += 1
            return
        self.n += 1
        if self.reference is not None:
            self.bins[bisect.bisect_right(self.edges, value)] += 1
            if value < self.minimum or value > self.maximum:
                self.out_of_range += 1

    def drift(self) -> Stats:
        """Drift statistics against the reference (empty without a reference or values)."""
        ref = self.reference
        if ref is None or self.n == 0:
            return {}
        coarse = [0] * len(ref.coarse_counts)
        for count, target in zip(self.bins, ref.coarse_of, strict=True):
            coarse[target] += count
        chi, chi_p = chi_square(ref.coarse_counts, coarse)
        ks, ks_p = ks_binned(ref.counts, self.bins)
        return _finite(
            {
                "psi": psi(ref.coarse_counts, coarse),
                "jensen_shannon": jensen_shannon(ref.coarse_counts, coarse),
                "chi_square": chi,
                "chi_square_pvalue": chi_p,
                "ks": ks,
                "ks_pvalue": ks_p,
                "wasserstein": wasserstein_binned(ref.counts, self.bins, ref.widths, ref.std),
            }
        )

    def quality(self, events: int) -> Stats:
        """Data-quality rates over the window's events."""
        if events == 0:
            return {}
        return {
            **self._rates(events),
            "out_of_range_rate": self.out_of_range / events if self.reference else None,
        }


class CategoricalAccumulator(_FeatureCounts):
    """Counts of one categorical feature in one window over the reference's categories."""

    __slots__ = ("bins", "index", "known", "reference", "unseen")

    def __init__(self, reference: CategoricalReference | None) -> None:
        self.reference = reference
        self.index = reference.index if reference else {}
        self.known = reference.known if reference else frozenset()
        # top categories, then "other known", then "never seen in the reference"
        self.bins = [0] * (len(reference.counts) + 1) if reference else []
        super().__init__()
        self.unseen = 0

    def add(self, value: Any) -> None:
        """Count one value (None means missing)."""
        if value is None:
            self.missing += 1
            return
        if type(value) is float and not math.isfinite(value):
            self.non_finite += 1
            return
        category = value if type(value) is str else category_of(value)
        if category is None:
            self.invalid += 1
            return
        self.n += 1
        if self.reference is None:
            return
        position = self.index.get(category)
        if position is None:
            if category in self.known:
                position = len(self.bins) - 2
            else:
                position = len(self.bins) - 1
                self.unseen += 1
        self.bins[position] += 1

    def drift(self) -> Stats:
        """Drift statistics against the reference (empty without a reference or values)."""
        ref = self.reference
        if ref is None or self.n == 0:
            return {}
        expected = [*ref.counts, 0]
        chi, chi_p = chi_square(expected, self.bins)
        return _finite(
            {
                "psi": psi(expected, self.bins),
                "jensen_shannon": jensen_shannon(expected, self.bins),
                "chi_square": chi,
                "chi_square_pvalue": chi_p,
                "unseen_share": self.unseen / self.n,
            }
        )

    def quality(self, events: int) -> Stats:
        """Data-quality rates over the window's events."""
        if events == 0:
            return {}
        return {
            **self._rates(events),
            "unseen_rate": self.unseen / events if self.reference else None,
        }
