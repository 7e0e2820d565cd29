"""Recorded streams on disk: JSONL (optionally gzipped) of Kafka records, plain events, or CSV.

A recorded line is one Kafka record::

    {"topic": "predictions", "partition": 0, "offset": 41, "timestamp": 1795800000000,
     "key": "fraud-v3", "value": "{\\"event_id\\": ...}", "headers": [{"key": "h", "value": "v"}]}

Keys, values and header values that are not UTF-8 are stored base64-encoded under ``key_b64``,
``value_b64`` and ``value_b64``. A line that is not a recorded record is taken as the event itself
(the value), so files written by other tools or by hand replay as they are. CSV files carry one
event per row: columns named by ``replay.csv_*`` settings map to event fields, every other column
is a feature.
"""

from __future__ import annotations

import base64
import binascii
import csv
import gzip
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from stream_monitor.config.settings import ReplaySettings
from stream_monitor.errors import StreamMonitorError

__all__ = ["BadLineError", "Record", "encode_record", "open_text", "read_records"]

_RECORD_KEYS = {
    "topic",
    "partition",
    "offset",
    "timestamp",
    "key",
    "key_b64",
    "value",
    "value_b64",
    "headers",
}


class BadLineError(StreamMonitorError):
    """A line of an input file that cannot be replayed."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Record:
    """One Kafka record to produce (or that was consumed)."""

    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp: int | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    line: int = 0


def open_text(path: Path, mode: str) -> IO[str]:
    """Open ``path`` as text, gzip-compressed when its name ends with ``.gz``."""
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.GzipFile(path, mode + "b"), encoding="utf-8", newline="")
    return path.open(mode, encoding="utf-8", newline="")


def _put(out: dict[str, Any], name: str, data: bytes | None) -> None:
    if data is None:
        out[name] = None  # a null key, or a tombstone value
        return
    try:
        out[name] = data.decode("utf-8")
    except UnicodeDecodeError:
        out[name + "_b64"] = base64.b64encode(data).decode()


def encode_record(record: Record) -> bytes:
    """One JSONL line (without the newline) for ``record``."""
    out: dict[str, Any] = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
    }
    _put(out, "key", record.key)
    _put(out, "value", record.value)
    headers = []
    for name, value in record.headers:
        header: dict[str, Any] = {"key": name}
        _put(header, "value", value)
        headers.append(header)
    out["headers"] = headers
    return orjson.dumps(out)


def _bytes(data: dict[str, Any], name: str) -> bytes | None:
    if isinstance(data.get(name), str):
        return str(data[name]).encode("utf-8")
    if isinstance(data.get(name + "_b64"), str):
        return base64.b64decode(data[name + "_b64"], validate=True)
    if data.get(name) is None and data.get(name + "_b64") is None:
        return None
    raise ValueError(f"{name} must be a string (or {name}_b64 base64)")


def _from_json_line(text: str, line: int) -> Record:
    data = orjson.loads(text)
    if (
        isinstance(data, dict)
        and ("value" in data or "value_b64" in data)
        and set(data) <= (_RECORD_KEYS)
    ):
        headers = []
        for header in data.get("headers") or []:
            value = _bytes(header, "value")
            headers.append((str(header["key"]), value or b""))
        timestamp = data.get("timestamp")
        return Record(
            value=_bytes(data, "value"),
            key=_bytes(data, "key"),
            headers=headers,
            timestamp=int(timestamp) if isinstance(timestamp, int) else None,
            topic=data.get("topic"),
            partition=data.get("partition"),
            offset=data.get("offset"),
            line=line,
        )
    if not isinstance(data, dict):
        raise TypeError("expected a JSON object (an event or a recorded record)")
    timestamp = data.get("timestamp")
    return Record(
        value=text.strip().encode("utf-8"),
        timestamp=timestamp if isinstance(timestamp, int) else None,
        line=line,
    )


def _cell(text: str) -> Any:
    if text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text else number


def _from_csv_row(row: dict[str, str], columns: ReplaySettings, line: int) -> Record:
    mapping = {
        "event_id": columns.csv_event_id,
        "model_id": columns.csv_model_id,
        "model_version": columns.csv_model_version,
        "timestamp": columns.csv_timestamp,
        "prediction": columns.csv_prediction,
        "score": columns.csv_score,
        "label": columns.csv_label,
    }
    for required in ("event_id", "model_id", "timestamp", "prediction"):
        if not row.get(mapping[required]):
            raise ValueError(
                f"column {mapping[required]!r} ({required}) is empty or missing; "
                f"map it with replay.csv_{required}"
            )
    used = set(mapping.values()) | set(columns.csv_ignore)
    event: dict[str, Any] = {
        name: _cell(row[column])
        for name, column in mapping.items()
        if column in row and row[column] != ""
    }
    event["event_id"] = row[mapping["event_id"]]
    event["model_id"] = row[mapping["model_id"]]
    event["features"] = {k: _cell(v) for k, v in row.items() if k not in used and k is not None}
    timestamp = event.get("timestamp")
    return Record(
        value=orjson.dumps(event),
        timestamp=timestamp if isinstance(timestamp, int) else None,
        line=line,
    )


def read_records(
    path: Path,
    columns: ReplaySettings | None = None,
    on_bad_line: Callable[[BadLineError], None] | None = None,
) -> Iterator[Record]:
    """The records of ``path``; a bad line goes to ``on_bad_line`` (default: raise it)."""
    columns = columns or ReplaySettings()
    name = path.name.removesuffix(".gz")
    try:
        handle = open_text(path, "r")
    except OSError as exc:
        raise StreamMonitorError(f"cannot read {path}: {exc.strerror}") from exc

    def bad(line: int, reason: str) -> None:
        error = BadLineError(path, line, reason)
        if on_bad_line is None:
            raise error
        on_bad_line(error)

    with handle:
        if name.endswith(".csv"):
            reader = csv.DictReader(handle)
            for row in reader:
                try:
                    yield _from_csv_row(row, columns, reader.line_num)
                except (ValueError, TypeError) as exc:
                    bad(reader.line_num, str(exc))
            return
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                yield _from_json_line(text, number)
            except (orjson.JSONDecodeError, ValueError, KeyError, TypeError, binascii.Error) as exc:
                bad(number, f"{type(exc).__name__}: {exc}")
