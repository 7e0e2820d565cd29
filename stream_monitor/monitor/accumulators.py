"""Per-window accumulators of one feature: binned counts for drift, counters for data quality.

Memory is fixed by the reference's bins, never by the number of events. Bad values are counted
(missing, non-finite, type mismatch), never raised.
"""

from __future__ import annotations

import bisect
import functools
import math
from array import array
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

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

__all__ = ["CategoricalAccumulator", "NumericAccumulator", "NumericColumn", "Stats"]

Stats = dict[str, float | None]
_NUMBER_TYPES = frozenset({float, int})
SMALL_RUN = 32  # below this many values, plain Python beats numpy's per-call cost


@functools.lru_cache(maxsize=64)
def _identity(length: int) -> np.ndarray:
    """0, 1, ..., length - 1 (read-only, shared)."""
    positions = np.arange(length)
    positions.flags.writeable = False
    return positions


class NumericColumn:
    """One feature's values in a run of events, sorted out once for the window and detectors.

    ``values`` holds the finite numbers (booleans included, as 0/1) and ``positions`` their
    indices in the run; ``detectable`` marks which of them change detectors take (booleans are
    counted in a window but are not a measurement to standardise). Numpy arrays for long runs,
    plain lists for short ones (fewer than ``SMALL_RUN`` values); both count the same.
    """

    __slots__ = ("detectable", "invalid", "missing", "non_finite", "positions", "values")

    values: np.ndarray | list[float]
    positions: np.ndarray | list[int]

    def __init__(self, column: Sequence[Any]) -> None:
        self.missing = self.non_finite = self.invalid = 0
        self.detectable: list[bool] | None = None  # None: every value
        if len(column) >= SMALL_RUN and set(map(type, column)) <= _NUMBER_TYPES:
            try:
                values = np.array(column, dtype=np.float64)
            except OverflowError:  # an integer beyond the float range: sort out one by one
                pass
            else:
                if math.isfinite(values.sum()):  # no NaN or infinity (one call, not two)
                    self.values = values
                    self.positions = _identity(len(values))
                    return
                finite = np.isfinite(values)
                if finite.all():  # the sum overflowed
                    self.values = values
                    self.positions = _identity(len(values))
                else:
                    self.non_finite = int(len(values) - np.count_nonzero(finite))
                    self.values = values[finite]
                    self.positions = np.flatnonzero(finite)
                return
        self._one_by_one(column)

    def _one_by_one(self, column: Sequence[Any]) -> None:
        values: list[float] = []
        positions: list[int] = []
        detectable: list[bool] = []
        for i, value in enumerate(column):
            if value is None:
                self.missing += 1
                continue
            kind = type(value)
            if kind is not float and kind is not int and kind is not bool:
                self.invalid += 1
                continue
            try:
                number = float(value)
            except OverflowError:
                self.non_finite += 1
                continue
            if not math.isfinite(number):
                self.non_finite += 1
                continue
            values.append(number)
            positions.append(i)
            detectable.append(kind is not bool)
        self.values = values
        self.positions = positions
        if not all(detectable):
            self.detectable = detectable

    def for_detectors(self) -> tuple[np.ndarray | list[float], np.ndarray | list[int]]:
        """(values, positions) that change detectors take."""
        if self.detectable is None:
            return self.values, self.positions
        kept = self.detectable
        return (
            [v for v, keep in zip(self.values, kept, strict=True) if keep],
            [p for p, keep in zip(self.positions, kept, strict=True) if keep],
        )


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
        """Count a run's values of this feature at once."""
        self.missing += column.missing
        self.non_finite += column.non_finite
        self.invalid += column.invalid
        values = column.values
        self.n += len(values)
        if isinstance(values, list):
            if self.reference is not None:
                edges, bins = self.reference.edges, self.bins
                low, high, beyond = self.minimum, self.maximum, 0
                for value in values:
                    bins[bisect.bisect_right(edges, value)] += 1
                    if value < low or value > high:
                        beyond += 1
                self.out_of_range += beyond
            return
        if self.reference is not None and len(values):
            edges = np.frombuffer(self.reference.edges, dtype=np.float64)  # type: ignore[call-overload]
            found = np.searchsorted(edges, values, side="right")
            counts = np.frombuffer(self.bins, dtype=np.int64)
            counts += np.bincount(found, minlength=len(counts))
            low, high = self.minimum, self.maximum
            if values.min() < low or values.max() > high:  # rare: count them
                self.out_of_range += int(np.count_nonzero((values < low) | (values > high)))

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

    def add(self, value: Any, times: int = 1) -> None:
        """Count one value, ``times`` over (None means missing)."""
        if value is None:
            self.missing += times
            return
        if type(value) is float and not math.isfinite(value):
            self.non_finite += times
            return
        category = value if type(value) is str else category_of(value)
        if category is None:
            self.invalid += times
            return
        self.n += times
        if self.reference is None:
            return
        position = self.index.get(category)
        if position is None:
            if category in self.known:
                position = len(self.bins) - 2
            else:
                position = len(self.bins) - 1
                self.unseen += times
        self.bins[position] += times

    def add_many(self, column: Sequence[Any]) -> None:
        """Count a run's values of this feature, each distinct value sorted out once."""
        add = self.add
        # keyed by type too: 1, 1.0 and True are equal but different categories
        for (_, value), times in Counter(zip(map(type, column), column, strict=True)).items():
            add(value, times)

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
