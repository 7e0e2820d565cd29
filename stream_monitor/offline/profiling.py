"""Reading recorded data for profiles and backtests: JSONL (optionally gzipped) and CSV files.

An edge module (file I/O); the statistics themselves live in the pure core.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any

from stream_monitor.config.models import ModelSpec
from stream_monitor.config.settings import Settings
from stream_monitor.errors import EventValidationError, StreamMonitorError
from stream_monitor.events.codec import EventCodec
from stream_monitor.events.schemas import PredictionEvent
from stream_monitor.monitor.performance import make_performance
from stream_monitor.monitor.reference import (
    ReferenceError,
    ReferenceProfile,
    Row,
    category_of,
    profile_from_rows,
)
from stream_monitor.monitor.segments import MISSING, OTHER, keeps_missing, segment_label

__all__ = ["DataFileError", "load_references", "profile_file", "read_chunks", "read_lines"]

_MAX_ERRORS_SHOWN = 10


class DataFileError(StreamMonitorError):
    """A data file could not be read or holds no usable rows."""


_BLOCK_BYTES = 1 << 20


def read_chunks(path: Path, size: int) -> Iterator[tuple[int, list[bytes]]]:
    """Lines of a JSONL or JSONL.gz file in chunks of ``size``, each with its first line's
    1-based number. Lines are as written (blank ones included, ``\r`` kept): the file is read
    in blocks and split, not line by line, which is most of the cost of a backtest's reading.
    """
    opener: Callable[..., IO[bytes]] = gzip.open if path.suffix == ".gz" else open  # type: ignore[assignment]
    number, tail = 1, b""
    pending: list[bytes] = []
    try:
        with opener(path, "rb") as handle:
            while block := handle.read(_BLOCK_BYTES):
                lines = (tail + block).split(b"\n")
                tail = lines.pop()
                pending.extend(lines)
                while len(pending) >= size:
                    yield number, pending[:size]
                    number, pending = number + size, pending[size:]
    except OSError as exc:  # includes gzip.BadGzipFile
        raise DataFileError(f"{path}: cannot be read ({exc}); check the path and format") from None
    except EOFError:
        raise DataFileError(f"{path}: ends in the middle of a gzip stream") from None
    if tail:
        pending.append(tail)
    if pending:
        yield number, pending


def read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Non-empty lines of a JSONL or JSONL.gz file, stripped, with their 1-based numbers."""
    for first, lines in read_chunks(path, 4096):
        for number, line in enumerate(lines, start=first):
            stripped = line.strip()
            if stripped:
                yield number, stripped


def _read_jsonl(
    path: Path, model_id: str, codec: EventCodec
) -> tuple[list[PredictionEvent], dict[str, Any], list[str]]:
    """The model's predictions, the labels of the file by event id, and the invalid lines."""
    predictions: list[PredictionEvent] = []
    labels: dict[str, Any] = {}
    errors: list[str] = []
    for number, line in read_lines(path):
        try:
            event = codec.decode_any(line)
        except EventValidationError as exc:
            errors.append(f"line {number}: {exc}")
            continue
        if event.model_id != model_id:
            continue
        if isinstance(event, PredictionEvent):
            predictions.append(event)
        else:
            labels[event.event_id] = event.label
    return predictions, labels, errors


def _performance(
    spec: ModelSpec, predictions: list[PredictionEvent], labels: Mapping[str, Any]
) -> dict[str, float | None]:
    """Reference performance of the labelled predictions (inline or label lines)."""
    performance = make_performance(spec.task, spec.performance.positive_label)
    labelled = 0
    for event in predictions:
        truth = event.label if event.label is not None else labels.get(event.event_id)
        if truth is not None:
            performance.add(event.prediction, event.score, event.scores, truth)
            labelled += 1
    return {**performance.metrics(), "labelled": float(labelled)} if labelled else {}


def _csv_value(text: str, numeric: bool) -> Any:
    if text == "":
        return None
    if numeric:
        try:
            return float(text)
        except ValueError:
            return text  # counted as a type mismatch by the reference builder
    return text


def _rows_from_csv(path: Path, spec: ModelSpec) -> list[Row]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            records = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataFileError(f"{path}: cannot be read as CSV ({exc})") from None
    if not records:
        return []
    columns = [c for c in records[0] if c not in ("score", "prediction")]

    def looks_numeric(column: str) -> bool:
        if column in spec.features:
            return spec.features[column] == "numeric"
        for record in records:
            try:
                if record[column] != "":
                    float(record[column])
            except ValueError:
                return False
        return True

    numeric = {c: looks_numeric(c) for c in columns}
    rows: list[Row] = []
    for record in records:
        features = {c: _csv_value(record[c] or "", numeric[c]) for c in columns}
        score = _csv_value(record.get("score") or "", True)
        prediction = _csv_value(record.get("prediction") or "", spec.task == "regression")
        rows.append((features, score, prediction))
    return rows


def profile_file(
    path: Path, model_id: str, spec: ModelSpec, codec: EventCodec | None = None
) -> tuple[ReferenceProfile, list[str]]:
    """Profile ``model_id`` from a JSONL(.gz) file of prediction events or a CSV of features.

    Returns the profile and the problems met (invalid lines, at most ten shown).
    """
    errors: list[str] = []
    performance: dict[str, float | None] = {}
    if path.suffix.lower() == ".csv":
        rows = _rows_from_csv(path, spec)
    else:
        predictions, labels, errors = _read_jsonl(path, model_id, codec or EventCodec())
        rows = [(e.features, e.score, e.prediction) for e in predictions]
        performance = _performance(spec, predictions, labels)
    if not rows:
        raise DataFileError(
            f"{path}: no events of model {model_id!r} to profile"
            + (f" ({len(errors)} invalid lines, first: {errors[0]})" if errors else "")
        )
    if path.suffix.lower() == ".csv":
        events: list[Any] = [
            SimpleNamespace(features=f, metadata=None, model_version=None) for f, _, _ in rows
        ]
    else:
        events = predictions
    profile = replace(
        profile_from_rows(model_id, spec.features, spec.task, rows, source="file"),
        performance=performance,
        segments=_segment_profiles(model_id, spec, rows, events),
        reference_id="",  # recomputed over the content, performance and segments included
    )
    return profile, errors[:_MAX_ERRORS_SHOWN] + (
        [f"... and {len(errors) - _MAX_ERRORS_SHOWN} more"]
        if len(errors) > _MAX_ERRORS_SHOWN
        else []
    )


def segment_value(entry: str, event: Any) -> str:
    """An event's value of a ``segments.by`` entry, as the native core names it (categories
    as strings; ``__missing__`` without one)."""
    if entry == "model_version":
        value = event.model_version
    elif entry.startswith("metadata."):
        value = (event.metadata or {}).get(entry.removeprefix("metadata."))
    else:
        value = event.features.get(entry)
    found = category_of(value)
    return MISSING if found is None else found


def _segment_profiles(
    model_id: str, spec: ModelSpec, rows: list[Row], events: list[Any]
) -> dict[str, ReferenceProfile]:
    """A profile per segment of ``segments.by`` (the first ``max_values`` values of an entry,
    the rest pooled as ``__other__``), for those with at least a segment warm-up of rows."""
    segments = spec.segments
    enough = segments.warmup_events or spec.warmup_events
    out: dict[str, ReferenceProfile] = {}
    for entry in segments.by:
        missing_kept = keeps_missing(entry)
        groups: dict[str, list[Row]] = {}
        for row, event in zip(rows, events, strict=True):
            value = segment_value(entry, event)
            if value == MISSING and not missing_kept:
                continue  # as the monitors do: the model's own events
            label = segment_label(entry, value)
            if label not in groups and len(groups) >= segments.max_values:
                label = segment_label(entry, OTHER)
            groups.setdefault(label, []).append(row)
        for label, part in groups.items():
            if len(part) >= enough:
                out[label] = profile_from_rows(model_id, spec.features, spec.task, part, "file")
    return out


def load_references(settings: Settings) -> Mapping[str, ReferenceProfile]:
    """The reference profiles named in the models' specs, checked against their model ids."""
    references: dict[str, ReferenceProfile] = {}
    for model_id, spec in settings.models.items():
        if spec.reference is None:
            continue
        label = f"models.{model_id}.reference ({spec.reference})"
        try:
            data = spec.reference.read_bytes()
        except OSError as exc:
            raise ReferenceError(f"{label}: cannot be read ({exc.strerror})") from None
        profile = ReferenceProfile.from_json(data, source=label)
        if profile.model_id != model_id:
            raise ReferenceError(
                f"{label}: profiles model {profile.model_id!r}, not {model_id!r}; "
                f"profile the right model with `stream-monitor profile DATA --model {model_id}`"
            )
        references[model_id] = profile
    return references
