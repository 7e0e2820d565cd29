"""The rolling view of performance: a metric over the latest N labelled predictions, whatever
the windows (a mean of absolute errors for regressors, the share of hits for classifiers)."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from typing import Any

from stream_monitor._native import roll_bits

__all__ = ["RollingHits", "RollingMean"]


class _Ring:
    """A rolling view's place in its ring and its running total, kept in arrays so that an
    update allocates nothing that outlives it. (A new int or float in an attribute would:
    allocated among a batch's temporaries, such as the summaries of many windows closing at
    once, one small object per model keeps all those arenas of Python's allocator resident.)"""

    __slots__ = ("_at", "_total", "size")

    def __init__(self, size: int, total: str) -> None:
        self.size = size
        self._at = array("q", bytes(16))  # position, count
        self._total: array[Any] = array(total, bytes(8))

    @property
    def position(self) -> int:
        """Where the next value goes."""
        return self._at[0]

    @property
    def count(self) -> int:
        """Values in the window (at most ``size``)."""
        return self._at[1]

    def update(self, value: float) -> None:
        """Add one value, dropping the oldest once the window is full."""
        self.update_many((value,))

    def update_many(self, values: Iterable[float]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def get(self) -> float | None:
        """The mean, or None before the first value."""
        count = self._at[1]
        return self._total[0] / count if count else None

    def _moved(self, position: int, total: float, added: int) -> None:
        self._at[0] = position
        self._at[1] = min(self._at[1] + added, self.size)
        self._total[0] = total


class RollingMean(_Ring):
    """Mean of the latest ``size`` values, in a fixed ring buffer.

    The rolling view of performance for regressors: absolute errors give a rolling MAE. The
    running total is recomputed exactly each time the ring wraps, so rounding never accumulates.
    Classifiers' hits take :class:`RollingHits`.
    """

    __slots__ = ("values",)

    def __init__(self, size: int) -> None:
        super().__init__(size, "d")
        self.values = array("d", bytes(8 * size))

    def update_many(self, values: Iterable[float]) -> None:
        """Add each value in order, dropping the oldest once the window is full."""
        size, ring = self.size, self.values
        position, total, added = self._at[0], self._total[0], 0
        for value in values:
            total += value - ring[position]
            ring[position] = value
            position += 1
            added += 1
            if position == size:
                position = 0
                total = math.fsum(ring)
        self._moved(position, total, added)


class RollingHits(_Ring):
    """Share of hits among the latest ``size`` predictions (rolling accuracy), a bit a hit.

    The same means as :class:`RollingMean` of 1/0 values (the total is an exact count), in an
    eighth of the memory.
    """

    __slots__ = ("bits",)

    def __init__(self, size: int) -> None:
        super().__init__(size, "q")
        self.bits = bytearray((size + 7) // 8)

    def update_many(self, values: Iterable[float]) -> None:
        """Add a hit (truthy) or miss for each value in order (natively)."""
        position, delta, added = roll_bits(self.bits, self._at[0], self.size, values)
        self._moved(position, self._total[0] + delta, added)
