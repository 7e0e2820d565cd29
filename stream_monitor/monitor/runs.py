"""What the Python side reads of a run the native core counted (its columns, its events'
times, the model version at each event) and of a window it closed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from stream_monitor.monitor.multivariate import JointCheck
from stream_monitor.monitor.reference_view import PREDICTION
from stream_monitor.monitor.windows import WindowBounds

if TYPE_CHECKING:
    from stream_monitor._native import Batch

__all__ = ["ClosedWindow", "LazyRunColumns", "RunTimes", "version_at"]


class ClosedWindow(NamedTuple):
    """A window the native core closed, as the summary and the rules read it."""

    key: int
    bounds: WindowBounds
    late: int
    events: int
    drift: dict[str, Any]
    quality: dict[str, Any]
    sizes: dict[str, int]
    distributions: dict[str, Any]
    prediction: dict[str, Any]
    prediction_size: int
    latency: dict[str, Any]
    lag: dict[str, Any]
    detections: dict[str, int]
    joint: JointCheck | None  # the multivariate test
    joint_events: int

    @classmethod
    def of(
        cls,
        closed: tuple[Any, ...],
        joint_of: tuple[tuple[str, ...], float] | None,
        detections: dict[str, int],
    ) -> ClosedWindow:
        """From the core's close (``joint_of``: the joint reference's features and error, when
        the model has one; ``detections``: the detectors' signals in the window)."""
        key, (index, start, end), late, count, features, prediction, latency, lag, joint = closed
        distributions = {name: d for name, _, _, _, d in features if d is not None}
        if prediction and prediction[3] is not None:
            distributions[PREDICTION] = prediction[3]
        return cls(
            key,
            WindowBounds(index, start, end),
            late,
            count,
            {name: stats for name, stats, _, _, _ in features},
            {name: q for name, _, q, _, _ in features},
            {name: n for name, _, _, n, _ in features},
            distributions,
            prediction[0] if prediction else {},
            prediction[2] if prediction else 0,
            latency,
            lag,
            detections,
            JointCheck.of(*joint_of, joint) if joint is not None and joint_of is not None else None,
            joint[0] if joint else 0,
        )


class RunTimes(NamedTuple):
    """A run's event times, its windows' (count, first) before it, and the last open window."""

    timestamps: list[int]
    before: dict[int, tuple[int, int | None]]
    last_open: tuple[int, int, int | None] | None

    def of(self, key: int | None, position: int) -> tuple[int, int | None]:
        """(count, first event time) of window ``key`` just after event ``position``."""
        if key is None:
            return 0, None
        if key not in self.before:  # not one of the run's windows: as it was after the run
            assert self.last_open is not None  # noqa: S101 - key came from last_open
            return self.last_open[1], self.last_open[2]
        count, first = self.before[key]
        earliest = min(self.timestamps[: position + 1])
        return count + position + 1, earliest if first is None else min(first, earliest)


class LazyRunColumns:
    """The columns of a run's events that labels and performance read, built on first use."""

    __slots__ = ("_columns", "batch", "positions")

    def __init__(self, batch: Batch, positions: list[int]) -> None:
        self.batch = batch
        self.positions = positions
        self._columns: tuple[list[Any], ...] | None = None

    @property
    def timestamps(self) -> list[int]:
        """The events' times."""
        return self.columns()[1]

    def columns(self) -> tuple[list[Any], ...]:
        """(event ids, times, predictions, scores, per-class scores, labels)."""
        if self._columns is None:
            self._columns = self.batch.outcomes(self.positions)
        return self._columns


def version_at(
    versions: list[tuple[int, str | None]], position: int, latest: str | None
) -> str | None:
    """The model version of a run's event ``position``: ``versions`` lists where it changed in
    the run (empty: it did not, the version is the ``latest``)."""
    found = latest
    for start, version in versions:
        if start > position:
            break
        found = version
    return found
