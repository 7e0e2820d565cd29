"""Joining late labels to their predictions by ``event_id``, in bounded memory.

Predictions wait for their label up to ``label_ttl`` seconds of event time and at most
``max_pending_predictions`` of them (oldest evicted first). Labels that arrive before their
prediction wait too (``max_pending_labels``). Everything dropped is counted, and the windows of
the predictions dropped unlabelled are handed back (``take_dropped``) so that their owner stops
waiting for them.

The join is native (``stream_monitor._native.PendingJoin``, ``native/src/join.rs``): a run of
predictions is registered in one call that reads them from the decoded batch, so an unlabelled
event costs no Python work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stream_monitor._native import PendingJoin

__all__ = ["LabelJoin", "Pending"]

LabelJoin = PendingJoin


@dataclass(frozen=True, slots=True)
class Pending:
    """A prediction waiting for its label (as the join hands it back)."""

    windows: tuple[int, ...]
    timestamp: int
    prediction: Any
    score: float | None
    scores: Any
