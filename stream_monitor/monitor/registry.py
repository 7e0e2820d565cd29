"""``MonitorSet``: one ``ModelMonitor`` per model id, created on first sight from the settings."""

from __future__ import annotations

import ctypes
import functools
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from stream_monitor._native import Batch, decode_batch
from stream_monitor.config.models import ModelSpec
from stream_monitor.config.settings import MonitoringSettings, Settings
from stream_monitor.errors import EventValidationError
from stream_monitor.events.schemas import LabelEvent, PredictionLike
from stream_monitor.monitor.model_monitor import ModelMonitor, Output, encode_for_core
from stream_monitor.monitor.reference import ReferenceProfile
from stream_monitor.monitor.snapshot import dump_state, load_state, unpack_state

__all__ = ["Groups", "MonitorSet", "TooManyModelsError", "UnknownModelError", "release_memory"]

Groups = list[tuple[str, list[int]]]  # (model id, positions in a batch)


@functools.cache
def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to do
        return None


class _Trims:
    """When the heap was last trimmed, and whether a batch ran since."""

    every = 1.0  # seconds between two trims at least

    def __init__(self) -> None:
        self.due = False
        self.at = -math.inf

    def note(self, freed: bool) -> None:
        """Remember that a batch ran (``freed``) since the last trim."""
        self.due = self.due or freed


_trims = _Trims()


def release_memory(*, freed: bool = False) -> None:
    """Hand freed heap pages back to the operating system (glibc's ``malloc_trim``) when a
    batch ran since the last trim (``freed`` says one did).

    Every batch frees memory: its decoded columns, what open windows outgrew, and, when it ends
    a warm-up or closes windows, the sample's temporaries and the windows' accumulators (with the
    outputs made of them once the caller is done with those). Without a trim, a process that did
    this for many models at once kept its peak as resident memory. :meth:`MonitorSet.update_native`
    marks its batches and trims for the earlier ones; a worker's loop calls this between batches
    too. The trim walks the heap (a few milliseconds for a heap of 100 MB), so it runs at most
    once a second; one put off is done by a later call.
    """
    _trims.note(freed)
    now = time.monotonic()
    if not _trims.due or now - _trims.at < _trims.every:
        return
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
    _trims.due, _trims.at = False, now


class UnknownModelError(EventValidationError):
    """An event names a model that is not configured while ``unknown_models`` is ``reject``."""

    def __init__(self, model_id: str) -> None:
        super().__init__(
            "model_id",
            repr(model_id),
            "is not configured under models and monitoring.unknown_models is reject; "
            "add the model to the config or set unknown_models: monitor",
        )


class TooManyModelsError(EventValidationError):
    """An event names one more model than ``monitoring.max_unlisted_models`` allows."""

    def __init__(self, model_id: str, limit: int) -> None:
        super().__init__(
            "model_id",
            repr(model_id)[:200],
            f"would be model {limit + 1} not listed under models in this partition, beyond "
            "monitoring.max_unlisted_models; list the model under models, or raise the limit",
        )


class MonitorSet:
    """The monitors of every model seen (for example, all models of one partition)."""

    def __init__(
        self,
        models: Mapping[str, ModelSpec],
        default: ModelSpec,
        unknown_models: str = "monitor",
        references: Mapping[str, ReferenceProfile] | None = None,
        max_unlisted_models: int = MonitoringSettings.model_fields["max_unlisted_models"].default,
    ) -> None:
        self.models = dict(models)
        self.default = default
        self.unknown_models = unknown_models
        self.references = dict(references or {})
        self.max_unlisted = max_unlisted_models
        self.monitors: dict[str, ModelMonitor] = {}
        self.unlisted = 0  # monitors of models not listed under models

    @classmethod
    def from_settings(
        cls, settings: Settings, references: Mapping[str, ReferenceProfile] | None = None
    ) -> MonitorSet:
        """Monitors as configured; ``references`` maps model ids to loaded profiles."""
        return cls(
            settings.models,
            settings.monitoring.default,
            settings.monitoring.unknown_models,
            references,
            settings.monitoring.max_unlisted_models,
        )

    def _spec(self, model_id: str) -> ModelSpec:
        spec = self.models.get(model_id)
        if spec is None:
            if self.unknown_models == "reject":
                raise UnknownModelError(model_id)
            spec = self.default
        return spec

    def monitor(self, model_id: str) -> ModelMonitor:
        """The monitor of ``model_id``, created on first use; raises for rejected models."""
        monitor = self.monitors.get(model_id)
        if monitor is None:
            spec = self._spec(model_id)
            listed = model_id in self.models
            if not listed and self.unlisted >= self.max_unlisted:
                raise TooManyModelsError(model_id, self.max_unlisted)
            monitor = ModelMonitor(model_id, spec, self.references.get(model_id))
            self.monitors[model_id] = monitor
            self.unlisted += not listed
        return monitor

    def update(self, event: PredictionLike) -> list[Output]:
        """Route one event to its model's monitor."""
        return self.monitor(event.model_id).update(event)

    def update_batch(self, events: Sequence[PredictionLike]) -> list[Output]:
        """Feed decoded events in order (one partition's batch): see :meth:`update_native`."""
        if not events:
            return []
        return self.update_native(decode_batch([encode_for_core(e) for e in events], trusted=True))

    def admit(
        self, batch: Batch, start: int = 0, stop: int | None = None
    ) -> tuple[Groups, list[tuple[int, EventValidationError]]]:
        """Sort the events of ``batch`` (those in ``start:stop``) by model: (model id, positions)
        of the models monitored, in order of first appearance, and (position, why) of the events
        refused (models not configured while ``unknown_models`` is reject), which are dropped
        from the batch."""
        admitted: Groups = []
        refused: list[tuple[int, EventValidationError]] = []
        for model_id, positions in batch.models(start, stop):
            try:
                self.monitor(model_id)
            except EventValidationError as exc:
                for position in positions:
                    batch.drop(position)
                    refused.append((position, exc))
                continue
            admitted.append((model_id, positions))
        return admitted, refused

    def update_native(self, batch: Batch, groups: Groups | None = None) -> list[Output]:
        """Feed the events of a natively decoded batch, each model's events together
        (``groups``: (model id, positions) as :meth:`admit` gives them; all by default).

        Outputs come model by model (models in order of first appearance in the batch), each
        model's in the order they arose; they are the same as event by event, since models
        share no state.
        """
        release_memory()  # for earlier batches: their outputs are gone by now
        out: list[Output] = []
        for model_id, positions in batch.models() if groups is None else groups:
            out.extend(self.monitor(model_id).update_native(batch, positions))
        # Every batch frees something (its decoded columns, what open windows outgrew, closed
        # windows and warm-up temporaries): trimmed by a later call, once the outputs are gone.
        _trims.note(True)
        return out

    def update_label(self, label: LabelEvent) -> list[Output]:
        """Route one label event to its model's monitor."""
        return self.monitor(label.model_id).update_label(label)

    def revisions(self) -> list[Output]:
        """Revised summaries (and their alerts) of windows that late labels changed."""
        out: list[Output] = []
        for model_id in sorted(self.monitors):
            out.extend(self.monitors[model_id].revisions())
        return out

    def snapshot(self, key: bytes | None = None) -> bytes:
        """All monitors of the set (for example one partition's) as one snapshot."""
        monitors = {m: self.monitors[m].__dict__ for m in sorted(self.monitors)}
        return dump_state(("set", "", monitors), key)

    def restore(self, data: bytes, key: bytes | None = None) -> None:
        """Replace the monitors with those of a snapshot made by :meth:`snapshot`."""
        _, _, states = unpack_state(load_state(data, key), "set")
        restored: dict[str, ModelMonitor] = {}
        for model_id, state in states.items():
            monitor = ModelMonitor(model_id, self._spec(model_id), self.references.get(model_id))
            monitor.restore(dump_state(("model", model_id, state), key), key)
            restored[model_id] = monitor
        self.monitors = restored
        self.unlisted = sum(m not in self.models for m in restored)

    def flush(self) -> list[Output]:
        """Close every open window of every model (models in name order)."""
        out: list[Output] = []
        for model_id in sorted(self.monitors):
            out.extend(self.monitors[model_id].flush())
        return out
