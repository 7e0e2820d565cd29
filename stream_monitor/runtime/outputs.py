"""How outputs look on Kafka, shared by the native worker and the Faust adapter."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stream_monitor import __version__
from stream_monitor.errors import BatchFailedError, EventValidationError, MonitorError
from stream_monitor.events.alerts import WindowSummary
from stream_monitor.events.codec import EventCodec, encode_event
from stream_monitor.monitor.model_monitor import Output, encode_for_core
from stream_monitor.monitor.registry import MonitorSet

__all__ = [
    "Processed",
    "dead_letter_headers",
    "process_batch",
    "process_records",
    "summary_message",
]

Headers = list[tuple[str, bytes]]


def summary_message(summary: WindowSummary) -> tuple[bytes, bytes, Headers]:
    """Value, key (the model id) and headers of a window summary on the metrics topic."""
    return (
        encode_event(summary),
        summary.model_id.encode(),
        [("revision", str(summary.revision).encode())],
    )


def dead_letter_headers(
    headers: Any, topic: str, partition: int, offset: int, error: EventValidationError
) -> Headers:
    """The original headers plus why and where the event failed."""
    return [
        *(headers or ()),
        ("error.reason", error.reason.encode()[:1000]),
        ("error.field", error.field.encode()[:200]),
        ("error.value", error.value.encode()[:200]),
        ("error.class", getattr(error, "cause_class", type(error).__name__).encode()),
        ("source.topic", topic.encode()),
        ("source.partition", str(partition).encode()),
        ("source.offset", str(offset).encode()),
        ("service.version", __version__.encode()),
    ]


@dataclass
class Processed:
    """What a batch of one topic's records gave."""

    outputs: list[Output] = field(default_factory=list)
    rejected: list[tuple[int, EventValidationError]] = field(default_factory=list)  # (index, why)
    models: Counter[str] = field(default_factory=Counter)  # events taken, per model
    labels: Counter[str] = field(default_factory=Counter)  # label events taken, per model


def process_batch(
    codec: EventCodec, monitors: MonitorSet, values: Sequence[bytes | None], *, labels: bool
) -> Processed:
    """Decode a batch of record values and feed the monitors: predictions all at once (see
    ``MonitorSet.update_batch``), labels one by one (the windows they revise are published
    before the model's next prediction)."""
    done = Processed()
    if labels:
        for index, value in enumerate(values):
            try:
                label = codec.decode_label(value)
            except EventValidationError as exc:
                done.rejected.append((index, exc))
                continue
            try:
                done.outputs += monitors.update_label(label)
            except EventValidationError as exc:
                done.rejected.append((index, exc))
                continue
            except Exception as exc:  # a bug of the monitor, not bad input
                raise BatchFailedError(MonitorError(exc), index) from exc
            done.models[label.model_id] += 1
        return done
    batch = codec.decode_batch(values)
    for index in batch.deferred():  # the schema decides what the native decoder deferred
        try:
            event = codec.decode_prediction(values[index])
        except EventValidationError as exc:
            done.rejected.append((index, exc))
            continue
        if not batch.fill(index, encode_for_core(event)):  # pragma: no cover - canonical form
            done.rejected.append(
                (index, EventValidationError("<event>", "", "cannot be read by the native core"))
            )
    admitted, refused = monitors.admit(batch)
    done.models.update({model_id: len(positions) for model_id, positions in admitted})
    done.rejected += refused
    done.rejected.sort(key=lambda item: item[0])
    done.outputs = _guarded(lambda: monitors.update_native(batch, admitted))
    return done


def process_records(
    codec: EventCodec,
    monitors: MonitorSet,
    values: Sequence[bytes | None],
    is_label: Sequence[bool],
) -> Processed:
    """:func:`process_batch` of a partition's predictions and labels merged in one sequence
    (``is_label[i]`` says which ``values[i]`` is), run by run in that order."""
    done = Processed()
    if values and (True not in is_label or False not in is_label):
        # the usual batch, of one topic (told by scans in C): one run, no loop per record
        return _one_run(codec, monitors, values, labels=bool(is_label[0]))
    start = 0
    while start < len(values):
        labels = is_label[start]
        stop = start + 1
        while stop < len(values) and is_label[stop] == labels:
            stop += 1
        try:
            part = process_batch(codec, monitors, values[start:stop], labels=labels)
        except BatchFailedError as exc:
            raise BatchFailedError(
                exc.failure, None if exc.index is None else start + exc.index
            ) from exc
        done.outputs += part.outputs
        done.rejected += [(start + index, error) for index, error in part.rejected]
        (done.labels if labels else done.models).update(part.models)
        start = stop
    return done


def _one_run(
    codec: EventCodec, monitors: MonitorSet, values: Sequence[bytes | None], *, labels: bool
) -> Processed:
    """:func:`process_records` of records of one topic only."""
    done = process_batch(codec, monitors, values, labels=labels)
    if labels:
        done.labels, done.models = done.models, done.labels
    return done


def _guarded(work: Callable[[], list[Output]]) -> list[Output]:
    """``work()``; what the monitor raises becomes :class:`BatchFailedError` (event unknown)."""
    try:
        return work()
    except Exception as exc:
        raise BatchFailedError(MonitorError(exc)) from exc
