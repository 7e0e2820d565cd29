"""Joining late labels to their predictions by ``event_id``, in bounded memory.

Predictions wait for their label up to ``label_ttl`` seconds of event time and at most
``max_pending_predictions`` of them (oldest evicted first). Labels that arrive before their
prediction wait too (``max_pending_labels``). Everything dropped is counted.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any

__all__ = ["LabelJoin", "Pending"]


@dataclass(frozen=True, slots=True)
class Pending:
    """A prediction waiting for its label."""

    windows: tuple[int, ...]
    timestamp: int
    prediction: Any
    score: float | None
    scores: Any


class LabelJoin:
    """Bounded stores of predictions waiting for labels and labels waiting for predictions."""

    def __init__(self, ttl_ms: int, max_predictions: int, max_labels: int) -> None:
        self.dropped: list[Pending] = []  # evicted or expired unlabelled; the owner drains it
        self.ttl = ttl_ms
        self.max_predictions = max_predictions
        self.max_labels = max_labels
        self.predictions: OrderedDict[str, Pending] = OrderedDict()
        self.labels: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self.counts: Counter[str] = Counter()

    def add_prediction(self, event_id: str, pending: Pending) -> tuple[Any, int] | None:
        """Register a prediction; returns an early label (label, label time) if one waited."""
        early = self.labels.pop(event_id, None)
        if early is not None:
            self.counts["matched_early"] += 1
            return early
        self.predictions[event_id] = pending
        self.predictions.move_to_end(event_id)
        if len(self.predictions) > self.max_predictions:
            _, dropped = self.predictions.popitem(last=False)
            self.counts["evicted_predictions"] += 1
            self.dropped.append(dropped)
        return None

    def add_label(self, event_id: str, label: Any, timestamp: int) -> Pending | None:
        """Match a label; returns the waiting prediction, or keeps the label until it comes."""
        pending = self.predictions.pop(event_id, None)
        if pending is not None:
            self.counts["matched"] += 1
            return pending
        self.labels[event_id] = (label, timestamp)
        self.labels.move_to_end(event_id)
        if len(self.labels) > self.max_labels:
            self.labels.popitem(last=False)
            self.counts["unmatched_labels"] += 1
        return None

    def expire(self, now: int) -> None:
        """Drop predictions and labels older than the TTL at event time ``now``."""
        horizon = now - self.ttl
        while self.predictions:
            event_id, pending = next(iter(self.predictions.items()))
            if pending.timestamp >= horizon:
                break
            del self.predictions[event_id]
            self.counts["expired_predictions"] += 1
            self.dropped.append(pending)
        while self.labels:
            event_id, (_, timestamp) = next(iter(self.labels.items()))
            if timestamp >= horizon:
                break
            del self.labels[event_id]
            self.counts["unmatched_labels"] += 1
