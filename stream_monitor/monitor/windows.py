"""Window bookkeeping: which window(s) an event belongs to, and when windows close.

Count windows close every N events of the model. Event-time windows (tumbling: step == size;
hopping: step < size) are aligned to the epoch and close when the watermark (largest event time
seen minus the allowed lateness) reaches their end. An event whose windows have all closed is
*late*: it is counted, and reported on the next window to close, never dropped silently. Time
comes in with the events; nothing here reads a clock. The bookkeeping is the native core's
(``native/src/model.rs``, the same the model cores run); these classes give it its Python shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stream_monitor._native import WindowClock
from stream_monitor.config.models import WindowSpec

__all__ = ["CountWindows", "EventTimeWindows", "WindowBounds", "core_window"]


def core_window(
    window: WindowSpec, followed: tuple[Any, ...] | None
) -> tuple[tuple[Any, ...], str]:
    """The native core's window shape of ``window`` and the summaries' window kind
    (``followed``: the shape of a segment's windows that its model closes)."""
    if followed is not None:
        return followed, "count"
    if window.kind == "count":
        return ("count", window.events), "count"
    size = round(window.size * 1000)
    step = round((window.step or window.size) * 1000)
    shape = ("time", size, step, round(window.allowed_lateness * 1000))
    return shape, "tumbling" if step == size else "hopping"


@dataclass(frozen=True, slots=True)
class WindowBounds:
    """Identity and extent of one window (epoch ms; ``end`` exclusive for time windows)."""

    index: int
    start: int
    end: int


def _bounds(closed: list[tuple[int, tuple[int, int, int]]]) -> list[tuple[int, WindowBounds]]:
    return [(key, WindowBounds(*bounds)) for key, bounds in closed]


class CountWindows:
    """Tumbling windows of ``size`` events of one model."""

    kind = "count"

    def __init__(self, size: int) -> None:
        self.size = size
        self._clock = WindowClock(("count", size))

    @property
    def index(self) -> int:
        """Index of the current window."""
        return self._clock.index or 0

    @property
    def count(self) -> int:
        """Events in the current window."""
        return self._clock.count or 0

    def open_windows(self, timestamp: int) -> list[int]:
        """Keys of the windows the event belongs to (always the current one)."""
        return self._clock.open_windows(timestamp)

    def take(self, events: int, first: int, last: int) -> None:
        """:meth:`open_windows` for ``events`` events at once, of times ``first`` to ``last``."""
        self._clock.take(events, first, last)

    def closed_windows(self) -> list[tuple[int, WindowBounds]]:
        """Windows that closed with the last event (the current one when it is full)."""
        return _bounds(self._clock.closed_windows())

    def flush(self) -> list[tuple[int, WindowBounds]]:
        """Close the current window even if it is not full (end of a finite stream)."""
        return _bounds(self._clock.flush())


class EventTimeWindows:
    """Tumbling (``step == size``) or hopping (``step < size``) event-time windows."""

    def __init__(self, size_ms: int, step_ms: int, lateness_ms: int) -> None:
        self.kind = "tumbling" if step_ms == size_ms else "hopping"
        self.size = size_ms
        self.step = step_ms
        self.lateness = lateness_ms
        self._clock = WindowClock(("time", size_ms, step_ms, lateness_ms))

    @property
    def watermark(self) -> int | None:
        """Largest event time seen minus the allowed lateness."""
        return self._clock.watermark

    def open_windows(self, timestamp: int) -> list[int]:
        """Starts of the still-open windows the event belongs to; empty when it is late."""
        return self._clock.open_windows(timestamp)

    def closed_windows(self) -> list[tuple[int, WindowBounds]]:
        """Windows whose end the watermark has reached, oldest first."""
        return _bounds(self._clock.closed_windows())

    def flush(self) -> list[tuple[int, WindowBounds]]:
        """Close every open window (end of a finite stream)."""
        return _bounds(self._clock.flush())
