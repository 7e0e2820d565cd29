"""One input partition's predictions and labels, released in timestamp order.

Partition ``p`` of the predictions topic and partition ``p`` of the labels topic feed the same
monitors. Taken in the order the fetches happen to bring them, the same input could give other
windows' performance, other revisions and other error-detector alarms after every restart. So, as
Kafka Streams does for the partitions of one task, the two are merged by record timestamp: the
record with the lower timestamp goes first (a prediction before a label of the same millisecond),
and while one side has nothing buffered the other waits as long as the broker holds more of the
empty side (or, with ``processing.max_task_idle``, a while longer for what is still to be
produced). Whenever the input is in the broker ahead of the worker (replays, backfills, catching
up after a crash or a rebalance) the order is a function of the input alone, so every run gives
the same outputs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["Merge"]


class Merge:
    """Buffered records of one partition of each input topic, released in timestamp order."""

    __slots__ = ("_first", "_next", "_second", "_topics")

    def __init__(self, first: str, second: str) -> None:
        """``first``: the topic whose record goes first when timestamps are equal."""
        self._topics = (first, second)
        self._first: deque[Any] = deque()
        self._second: deque[Any] = deque()
        self._next: dict[str, int] = {}  # per topic: the offset the next fetch starts at

    def expect(self, topic: str, offset: int) -> None:
        """The consumer was sought to ``offset`` of ``topic``."""
        self._next[topic] = offset

    def next_offset(self, topic: str) -> int | None:
        """The offset of ``topic`` after the last record added (or sought), when known."""
        return self._next.get(topic)

    def add(self, topic: str, records: list[Any]) -> None:
        """Buffer records fetched from ``topic`` (in offset order)."""
        if records:
            (self._first if topic == self._topics[0] else self._second).extend(records)
            self._next[topic] = records[-1].offset + 1

    def sizes(self) -> dict[str, int]:
        """Records buffered per topic."""
        return dict(zip(self._topics, (len(self._first), len(self._second)), strict=True))

    def __len__(self) -> int:
        return len(self._first) + len(self._second)

    def release(self, may_have_more: Callable[[str], bool]) -> list[Any]:
        """The records whose place in the merged order is settled, in that order.

        ``may_have_more(topic)``: whether more records of ``topic`` may still come before those
        buffered of the other topic (the broker holds some not fetched yet, or the idle wait is
        not over); while it says so for a topic with nothing buffered, the other waits.
        """
        first, second = self._first, self._second
        out: list[Any] = []
        while first and second:
            if first[0].timestamp <= second[0].timestamp:
                out.append(first.popleft())
            else:
                out.append(second.popleft())
        if first and not may_have_more(self._topics[1]):
            out += first
            first.clear()
        elif second and not may_have_more(self._topics[0]):
            out += second
            second.clear()
        return out
