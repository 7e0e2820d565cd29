"""Window bookkeeping: which window(s) an event belongs to, and when windows close.

Count windows close every N events of the model. Event-time windows (tumbling: step == size;
hopping: step < size) are aligned to the epoch and close when the watermark (largest event time
seen minus the allowed lateness) reaches their end. An event whose windows have all closed is
*late*: it is counted, and reported on the next window to close, never dropped silently. Time
comes in with the events; nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CountWindows", "EventTimeWindows", "WindowBounds"]


@dataclass(frozen=True, slots=True)
class WindowBounds:
    """Identity and extent of one window (epoch ms; ``end`` exclusive for time windows)."""

    index: int
    start: int
    end: int


class CountWindows:
    """Tumbling windows of ``size`` events of one model."""

    kind = "count"

    def __init__(self, size: int) -> None:
        self.size = size
        self.index = 0
        self.count = 0
        self.first_time: int | None = None
        self.last_time: int | None = None

    def open_windows(self, timestamp: int) -> list[int]:
        """Keys of the windows the event belongs to (always the current one)."""
        self.take(1, timestamp, timestamp)
        return [self.index]

    def take(self, events: int, first: int, last: int) -> None:
        """:meth:`open_windows` for ``events`` events at once, of times ``first`` to ``last``."""
        if self.first_time is None or first < self.first_time:
            self.first_time = first
        if self.last_time is None or last > self.last_time:
            self.last_time = last
        self.count += events

    def closed_windows(self) -> list[tuple[int, WindowBounds]]:
        """Windows that closed with the last event (the current one when it is full)."""
        if self.count < self.size:
            return []
        return [self._close()]

    def flush(self) -> list[tuple[int, WindowBounds]]:
        """Close the current window even if it is not full (end of a finite stream)."""
        return [self._close()] if self.count else []

    def _close(self) -> tuple[int, WindowBounds]:
        bounds = WindowBounds(self.index, self.first_time or 0, self.last_time or 0)
        key = self.index
        self.index += 1
        self.count = 0
        self.first_time = self.last_time = None
        return key, bounds


class EventTimeWindows:
    """Tumbling (``step == size``) or hopping (``step < size``) event-time windows."""

    def __init__(self, size_ms: int, step_ms: int, lateness_ms: int) -> None:
        self.kind = "tumbling" if step_ms == size_ms else "hopping"
        self.size = size_ms
        self.step = step_ms
        self.lateness = lateness_ms
        self.max_time: int | None = None
        self.open: set[int] = set()  # window starts

    @property
    def watermark(self) -> int | None:
        """Largest event time seen minus the allowed lateness."""
        return None if self.max_time is None else self.max_time - self.lateness

    def open_windows(self, timestamp: int) -> list[int]:
        """Starts of the still-open windows the event belongs to; empty when it is late."""
        if self.max_time is None or timestamp > self.max_time:
            self.max_time = timestamp
        watermark = self.max_time - self.lateness
        starts: list[int] = []
        start = timestamp - timestamp % self.step  # the latest window holding the event
        while start > timestamp - self.size:
            if start + self.size > watermark:  # windows the watermark passed are closed
                starts.append(start)
            start -= self.step
        starts.reverse()
        self.open.update(starts)
        return starts

    def closed_windows(self) -> list[tuple[int, WindowBounds]]:
        """Windows whose end the watermark has reached, oldest first."""
        watermark = self.watermark
        if watermark is None:
            return []
        ready = sorted(s for s in self.open if s + self.size <= watermark)
        return [self._close(start) for start in ready]

    def flush(self) -> list[tuple[int, WindowBounds]]:
        """Close every open window (end of a finite stream)."""
        return [self._close(start) for start in sorted(self.open)]

    def _close(self, start: int) -> tuple[int, WindowBounds]:
        self.open.discard(start)
        return start, WindowBounds(start // self.step, start, start + self.size)
