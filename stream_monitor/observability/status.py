"""What the endpoints and the metrics scrape read of a running worker: a small protocol, so
observability depends on it and never on the runtime that implements it."""

from __future__ import annotations

from collections.abc import Sized
from typing import Protocol

__all__ = ["WorkerStatus"]


class WorkerStatus(Protocol):
    """The states of a worker that are read when asked for, not pushed as they change."""

    @property
    def partitions(self) -> Sized:
        """The input partitions the worker owns."""

    def lags(self) -> dict[tuple[str, int], int]:
        """Per input partition owned: records after the next one to read (when known)."""

    def checkpoint_ages(self) -> dict[int, float]:
        """Seconds since each owned partition was last checkpointed (or taken)."""

    def readiness(self) -> tuple[bool, list[str]]:
        """Whether the worker is ready, and why not."""
