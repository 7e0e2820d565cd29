"""Recorded-stream files and replay pacing: pure logic, no broker."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from stream_monitor.config.settings import ReplaySettings
from stream_monitor.errors import StreamMonitorError
from stream_monitor.replay import (
    BadLineError,
    Pacer,
    Record,
    ReplayStats,
    encode_record,
    read_records,
)


def test_recorded_records_round_trip_with_binary_keys_values_and_headers(tmp_path: Path) -> None:
    records = [
        Record(b'{"a": 1}', b"model-1", [("trace", b"abc"), ("bin", b"\xff\x00")], 17, "t", 2, 9),
        Record(b"\xff\xfe not utf-8", None, [], None, "t", 0, 3),
        Record(None, b"k", [], 5, "t", 1, 4),  # a tombstone
    ]
    path = tmp_path / "rec.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for record in records:
            handle.write(encode_record(record).decode() + "\n")
    back = list(read_records(path))
    assert [(r.value, r.key, r.headers, r.timestamp, r.partition, r.offset) for r in back] == [
        (r.value, r.key, r.headers, r.timestamp, r.partition, r.offset) for r in records
    ]
    assert [r.line for r in back] == [1, 2, 3]
    assert "value_b64" in orjson.loads(encode_record(records[1]))


def test_a_plain_event_line_is_the_value_itself(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"event_id": "e1", "model_id": "m", "timestamp": 42}\n\n', encoding="utf-8")
    (record,) = read_records(path)
    assert orjson.loads(record.value or b"")["event_id"] == "e1"
    assert record.timestamp == 42
    assert record.key is None


def test_bad_lines_are_reported_with_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"event_id": "e1"}\nnot json\n[1, 2]\n{"value_b64": "%%%", "topic": "t"}\n{"x": 1}\n',
        encoding="utf-8",
    )
    seen: list[BadLineError] = []
    good = list(read_records(path, on_bad_line=seen.append))
    assert [r.line for r in good] == [1, 5]
    assert [e.line for e in seen] == [2, 3, 4]
    assert str(seen[0]).startswith(f"{path}:2: ")
    with pytest.raises(BadLineError, match=r"mixed.jsonl:2"):
        list(read_records(path))


def test_csv_columns_map_to_fields_and_the_rest_are_features(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "id,model,ts,pred,score,amount,country,row_hash\n"
        "e1,fraud,1795800000000,1,0.9,12.5,DE,zz\n"
        "e2,fraud,1795800000100,0,,,FR,yy\n"
        ",fraud,1795800000200,0,0.1,3,DE,xx\n",
        encoding="utf-8",
    )
    columns = ReplaySettings(
        csv_event_id="id",
        csv_model_id="model",
        csv_timestamp="ts",
        csv_prediction="pred",
        csv_ignore=("row_hash",),
    )
    errors: list[BadLineError] = []
    first, second = read_records(path, columns, errors.append)
    event = orjson.loads(first.value or b"")
    assert event == {
        "event_id": "e1",
        "model_id": "fraud",
        "timestamp": 1795800000000,
        "prediction": 1,
        "score": 0.9,
        "features": {"amount": 12.5, "country": "DE"},
    }
    assert first.timestamp == 1795800000000
    assert orjson.loads(second.value or b"")["features"] == {"amount": None, "country": "FR"}
    assert [e.line for e in errors] == [4]
    assert "column 'id' (event_id) is empty" in errors[0].reason


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StreamMonitorError, match="cannot read"):
        list(read_records(tmp_path / "nope.jsonl"))


def test_pacer_schedules_by_rate_by_recorded_time_or_not_at_all() -> None:
    by_rate = Pacer(rate=200)
    assert [by_rate.due(i, None) for i in (0, 1, 200, 2_000)] == [0.0, 0.005, 1.0, 10.0]
    by_speed = Pacer(speed=2)
    assert [by_speed.due(i, ts) for i, ts in enumerate((10_000, 11_000, 14_000))] == [0, 0.5, 2.0]
    by_speed.next_loop(2.0)  # the second pass starts where the first ended
    assert [by_speed.due(i, ts) for i, ts in enumerate((10_000, 12_000))] == [2.0, 3.0]
    assert Pacer().due(5, 123) == 0.0
    for bad in ({"rate": 0}, {"rate": float("inf")}, {"speed": -1}, {"rate": 1, "speed": 1}):
        with pytest.raises(StreamMonitorError):
            Pacer(**bad)  # type: ignore[arg-type]


def test_replay_summary_reports_rate_and_latency_percentiles() -> None:
    stats = ReplayStats(sent=100, started=10.0, finished=12.0)
    stats.latencies_ms = [float(i) for i in range(1, 101)]
    summary = stats.summary()
    assert summary["rate"] == 50.0
    assert summary["latency_ms_p50"] == 51.0
    assert summary["latency_ms_p99"] == 100.0
    assert ReplayStats(started=1.0, finished=1.0).summary()["latency_ms_p50"] is None
