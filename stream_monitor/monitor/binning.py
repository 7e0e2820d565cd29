"""How a reference's numeric sample becomes bins: interpolated quantiles, edges narrowed to
``f32`` (half the memory in the native core, binned alike on both sides), a bin of its own for
each atom, and fine counts summed into coarse bins."""

from __future__ import annotations

import bisect
import math
import struct
from array import array
from collections.abc import Iterable, Sequence

__all__ = ["FINE_BINS", "atom_edges", "coarsen", "narrow_f32", "quantile", "small_ints", "step_f32"]

FINE_BINS = 100  # percentile edges for KS / Wasserstein


def quantile(ordered: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile of sorted values (numpy's default method)."""
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    # Weighted form: no overflow even between -1e308 and 1e308.
    return ordered[low] * (1 - fraction) + ordered[high] * fraction


def small_ints(values: Iterable[int]) -> array[int]:
    """Small non-negative integers, one byte each when they fit."""
    listed = list(values)
    return array("B" if all(0 <= v < 256 for v in listed) else "q", listed)


def coarsen(counts: Sequence[int], coarse_of: Sequence[int]) -> array[int]:
    coarse = array("q", [0]) * (max(coarse_of) + 1 if coarse_of else 1)
    for count, target in zip(counts, coarse_of, strict=True):
        coarse[target] += count
    return coarse


def narrow_f32(value: float) -> float:
    """``value`` rounded to the nearest ``f32`` (kept when beyond its range): edges that are
    exact ``f32`` numbers take half the memory in the native core, and both sides bin alike."""
    narrow = array("f", (value,))[0]
    return value if math.isinf(narrow) and not math.isinf(value) else narrow


def step_f32(value: float, up: bool) -> float:
    """The ``f32`` number next to ``value`` (itself one), above it or below."""
    if value == 0.0:
        return 2.0**-149 if up else -(2.0**-149)
    (bits,) = struct.unpack("<i", struct.pack("<f", value))
    bits += 1 if (value > 0) == up else -1
    (found,) = struct.unpack("<f", struct.pack("<i", bits))
    return float(found)


def atom_edges(ordered: Sequence[float], quantiles: Iterable[float]) -> set[float]:
    """Edges that give each atom (a value at least 1% of the sample holds: zero spend, a
    default, a count) a bin of its own, so that a value next to it is never binned with it: the
    largest ``f32`` number at most the atom and the next one above."""
    edges: set[float] = set()
    least = max(2, len(ordered) // FINE_BINS)
    for value in quantiles:
        held = bisect.bisect_right(ordered, value) - bisect.bisect_left(ordered, value)
        if held < least or not abs(value) < 3.0e38:
            continue
        below = narrow_f32(value)
        if below > value:
            below = step_f32(below, up=False)
        edges |= {below, step_f32(below, up=True)}
    return edges
