"""Per-window accumulators of one feature: binned counts for drift, counters for data quality.

Memory is fixed by the reference's bins, never by the number of events. Bad values are counted
(missing, non-finite, type mismatch), never raised.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import Any

from stream_monitor._native import NumericColumn, count_categories, numeric_drift
from stream_monitor.monitor.reference import (
    CategoricalReference,
    NumericReference,
)
from stream_monitor.monitor.statistics import chi_square, jensen_shannon, psi

__all__ = ["CategoricalAccumulator", "NumericAccumulator", "NumericColumn", "Stats"]

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

    __slots__ = ("bins", "maximum", "minimum", "out_of_range", "reference")

    def __init__(self, reference: NumericReference | None) -> None:
        self.reference = reference
        self.bins = array("q", bytes(8 * len(reference.counts))) if reference else array("q")
        self.minimum = reference.minimum if reference else -math.inf
        self.maximum = reference.maximum if reference else math.inf
        super().__init__()
        self.out_of_range = 0

    def add_column(self, column: NumericColumn) -> None:
        """Count a run's values of this feature at once (binned by the native core)."""
        self.missing += column.missing
        self.non_finite += column.non_finite
        self.invalid += column.invalid
        self.n += len(column)
        if self.reference is not None and len(column):
            self.out_of_range += column.bin_into(
                self.reference.edges, self.bins, self.minimum, self.maximum
            )

    def drift(self) -> Stats:
        """Drift statistics against the reference (empty without a reference or values)."""
        ref = self.reference
        if ref is None or self.n == 0:
            return {}
        return numeric_drift(
            self.bins, ref.counts, ref.coarse_of, ref.coarse_counts, ref.edges, ref.std
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
        self.bins = array("q", bytes(8 * (len(reference.counts) + 1))) if reference else array("q")
        super().__init__()
        self.unseen = 0

    def add_many(self, column: Sequence[Any]) -> None:
        """Count a run's values of this feature at once (the native core, as :meth:`add`)."""
        ref = self.reference
        if ref is None:
            missing, non_finite, invalid, n, unseen = count_categories(column)
        else:
            missing, non_finite, invalid, n, unseen = count_categories(
                column, self.index, self.known, self.bins
            )
        self.missing += missing
        self.non_finite += non_finite
        self.invalid += invalid
        self.n += n
        self.unseen += unseen

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
