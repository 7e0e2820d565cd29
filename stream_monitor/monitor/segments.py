"""Segments: one model's events split by a categorical feature, a metadata key or the model
version, each value monitored like a model of its own, in step with the model's windows.

Every ``segments.by`` entry splits all of the model's events: each value gets its own
:class:`~stream_monitor.monitor.model_monitor.ModelMonitor` (drift, quality, performance,
detectors, estimation), with its own reference (the profile file's, else its own warm-up). The
first ``max_values`` values of an entry get one each; later values share ``<entry>=__other__``,
so memory is bounded. Events without the value form the segment ``<feature>=__missing__`` of a
feature; of ``model_version`` or a metadata key, they are left to the model's own monitors.
A segment's windows close when the model's do (the same bounds), so its
summaries and alerts line up with the model's. Grouping a batch by value is one native call per
entry; each segment's events are then fed to its native core as one run.

False alarms: a window holds up to ``1 + sum(max_values + 1)`` families of tests (the model and
every possible segment), so each segment's significance, detector delta and error detectors'
confidence are the model's divided by that number (Bonferroni): the stationary alert rate does
not grow with segments.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from stream_monitor.config.models import ModelSpec, SegmentSpec
from stream_monitor.events.alerts import Output, WindowSummary
from stream_monitor.monitor.compare import PREDICTION, compare_checks
from stream_monitor.monitor.lifecycle import AlertTracker
from stream_monitor.monitor.windows import WindowBounds

if TYPE_CHECKING:
    from stream_monitor._native import Batch
    from stream_monitor.events.schemas import LabelEvent
    from stream_monitor.monitor.reference import ReferenceProfile

__all__ = [
    "MISSING",
    "OTHER",
    "SegmentMonitor",
    "Segments",
    "families",
    "keeps_missing",
    "segment_label",
    "segment_spec",
]

OTHER = "__other__"  # the values beyond max_values
MISSING = "__missing__"  # events without the value (as the native grouping names them)
_ENDLESS = 2**62  # a segment's count window closes when its model's does, never by itself


def segment_label(entry: str, value: str) -> str:
    """How alerts and summaries name a segment: ``channel=phone``."""
    return f"{entry}={value}"


def keeps_missing(entry: str) -> bool:
    """Whether events without the value form a segment (``<feature>=__missing__``): for a
    feature; without a version or metadata key, events stay with the model's own monitors."""
    return entry != "model_version" and not entry.startswith("metadata.")


def families(spec: ModelSpec) -> int:
    """Test families a window can hold: the model and every segment it may track."""
    return 1 + sum(spec.segments.max_values + 1 for _ in spec.segments.by)


def segment_spec(spec: ModelSpec) -> ModelSpec:
    """The spec each segment of a model runs under: the model's, without segments, with the
    segment warm-up, the significance, detector delta and error detectors' confidence shared
    among the families, and tests from ``min_events`` values."""
    share = families(spec)
    drift = spec.drift.model_copy(
        update={
            "significance": spec.drift.significance / share,
            "detector_delta": spec.drift.detector_delta / share,
            "min_samples": min(spec.drift.min_samples, spec.segments.min_events),
        }
    )
    performance = spec.performance.model_copy(
        update={"detector_confidence": spec.performance.detector_confidence / share}
    )
    return spec.model_copy(
        update={
            # no segments of its own; min_events still says when its windows are judged
            "segments": SegmentSpec(min_events=spec.segments.min_events),
            "drift": drift,
            "performance": performance,
            "warmup_events": spec.segments.warmup_events or spec.warmup_events,
        }
    )


def segment_window(spec: ModelSpec) -> tuple[Any, ...] | None:
    """The native window shape of a segment of a model with count windows (one that only its
    model closes); None for time windows, whose segments keep the model's shape."""
    return ("count", _ENDLESS) if spec.window.kind == "count" else None


class SegmentMonitor(Protocol):
    """What the segments need of a segment's monitor (a ``ModelMonitor`` made for it)."""

    segment: str | None
    tracker: AlertTracker

    def update_native(self, batch: Batch, positions: list[int]) -> list[Output]:
        """Count the segment's events of a batch."""

    def update_label(self, label: LabelEvent) -> list[Output]:
        """Join a label to the segment's prediction."""

    def waits_for(self, event_id: str) -> bool:
        """Whether a prediction of the segment waits for this label."""

    def follow(self, max_time: int | None, bounds: tuple[int, int, int]) -> list[Output]:
        """Close the windows that closed with the model's window of ``bounds``."""

    def flush(self, bounds: tuple[int, int, int] | None = None) -> list[Output]:
        """Close every open window."""

    def revisions(self) -> list[Output]:
        """Revised summaries of closed windows."""


class MakeMonitor(Protocol):
    """How a segment's monitor is made (the ``ModelMonitor`` class): a plain callable, so the
    segments pickle with their model's state and make no reference cycle with it."""

    def __call__(
        self,
        model_id: str,
        spec: ModelSpec,
        reference: ReferenceProfile | None = None,
        *,
        segment: str | None = None,
    ) -> SegmentMonitor:
        """A monitor of ``model_id``'s segment ``segment`` under ``spec``."""


class Segments:
    """The segment monitors of one model, and which of a batch's events each one gets."""

    def __init__(
        self,
        model_id: str,
        spec: ModelSpec,
        make: MakeMonitor,
        references: Mapping[str, ReferenceProfile] | None = None,
    ) -> None:
        self.model_id = model_id
        self.model_spec = spec
        self.make = make
        self.by = spec.segments.by
        self.comparing = spec.segments.compare.by in spec.segments.by
        self.prefix = spec.segments.compare.by + "="
        # The compared entry's latest summaries of recent windows (revisions compare again).
        self.compared: OrderedDict[tuple[int, int], dict[str, WindowSummary]] = OrderedDict()
        self.keep = spec.performance.revision_windows
        self.max_values = spec.segments.max_values
        self.spec = segment_spec(spec)
        self.references = dict(references or {})
        self.monitors: dict[str, SegmentMonitor] = {}  # label -> monitor, in order of creation
        self.tracked = dict.fromkeys(self.by, 0)  # values with a monitor of their own
        # The batch being fed: (monitor, its positions) and how many of them were fed.
        self.plan: list[tuple[SegmentMonitor, list[int]]] = []
        self.fed: list[int] = []

    def monitor(self, entry: str, value: str) -> SegmentMonitor:
        """The monitor of ``entry``'s ``value`` (the entry's ``__other__`` beyond the limit)."""
        label = segment_label(entry, value)
        found = self.monitors.get(label)
        if found is not None:
            return found
        if self.tracked[entry] >= self.max_values:
            label = segment_label(entry, OTHER)
            found = self.monitors.get(label)
            if found is not None:
                return found
        else:
            self.tracked[entry] += 1
        made = self.make(self.model_id, self.spec, self.references.get(label), segment=label)
        self.monitors[label] = made
        return made

    def route(self, batch: Batch, positions: list[int]) -> None:
        """Split a batch's events of the model (``positions``) among the segments."""
        groups: dict[str, tuple[SegmentMonitor, list[list[int]]]] = {}
        for entry in self.by:
            missing_kept = keeps_missing(entry)
            for value, where in batch.segments(positions, entry):
                if value == MISSING and not missing_kept:
                    continue  # no version or metadata key: the model's own monitors see them
                monitor = self.monitor(entry, value)
                label = monitor.segment or ""
                groups.setdefault(label, (monitor, []))[1].append(where)
        self.plan = [
            (monitor, parts[0] if len(parts) == 1 else sorted(p for part in parts for p in part))
            for monitor, parts in groups.values()
        ]
        self.fed = [0] * len(self.plan)

    def feed(self, batch: Batch, through: int | None = None) -> list[Output]:
        """Feed each segment its routed events up to batch position ``through`` (all when
        None): the model counted them, and may be about to close a window."""
        out: list[Output] = []
        for i, (monitor, where) in enumerate(self.plan):
            start = self.fed[i]
            stop = len(where) if through is None else bisect_right(where, through, start)
            if stop > start:
                out.extend(monitor.update_native(batch, where[start:stop]))
                self.fed[i] = stop
        return out

    def close(self, max_time: int | None, bounds: tuple[int, int, int]) -> list[Output]:
        """The model closed the window of ``bounds``: close the segments' windows with it."""
        out: list[Output] = []
        for monitor in self.monitors.values():
            out.extend(monitor.follow(max_time, bounds))
        return out + self.compare(out)

    def compare(self, outputs: list[Output], *, revised: bool = False) -> list[Output]:
        """The compare rule over the windows of the compared entry's summaries in ``outputs``
        (a revision can raise an alert but never counts as a healthy window)."""
        if not self.comparing:
            return []
        touched: list[tuple[int, int]] = []
        for summary in outputs:
            if isinstance(summary, WindowSummary) and (summary.segment or "").startswith(
                self.prefix
            ):
                window = (summary.window_start, summary.window_end)
                self.compared.setdefault(window, {})[summary.segment or ""] = _slim(summary)
                if window not in touched:
                    touched.append(window)
        while len(self.compared) > self.keep:
            self.compared.popitem(last=False)
        out: list[Output] = []
        for window in touched:
            summaries = list(self.compared.get(window, {}).values())
            first = next((s for s in self.monitors if s.startswith(self.prefix)), None)
            for summary, check in compare_checks(self.model_spec, summaries, first):
                if revised and check.severity is None:
                    continue
                monitor = self.monitors[summary.segment or ""]
                alert = monitor.tracker.observe(
                    check,
                    window=WindowBounds(
                        summary.window_index, summary.window_start, summary.window_end
                    ),
                    sample_size=summary.sample_size,
                    model_version=summary.model_version,
                )
                if alert is not None:
                    out.append(alert)
        return out

    def flush(self, bounds: tuple[int, int, int] | None) -> list[Output]:
        """Close every segment's open windows (the model flushed, its last window ``bounds``)."""
        out: list[Output] = []
        for monitor in self.monitors.values():
            out.extend(monitor.flush(bounds))
        return out + self.compare(out)

    def revisions(self) -> list[Output]:
        """The segments' revised summaries (late labels), in the segments' order."""
        out: list[Output] = []
        for monitor in self.monitors.values():
            out.extend(monitor.revisions())
        return out + self.compare(out, revised=True)

    def on_label(self, event_id: str) -> list[SegmentMonitor]:
        """The segments whose predictions wait for this label (one per entry at most)."""
        return [m for m in self.monitors.values() if m.waits_for(event_id)]


def _slim(summary: WindowSummary) -> WindowSummary:
    """What the compare rule reads of a summary (kept for revisions: without the features')."""
    prediction = summary.distributions.get(PREDICTION)
    return summary.model_copy(
        update={
            "drift": {},
            "quality": {},
            "detections": {},
            "distributions": {} if prediction is None else {PREDICTION: prediction},
        }
    )
