"""Segments: per-value monitors that follow their model's windows and name themselves."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from stream_monitor._native import decode_batch
from stream_monitor.config.models import ModelSpec
from stream_monitor.events import AlertEvent, LabelEvent, PredictionEvent, WindowSummary
from stream_monitor.events.alerts import dedup_key_for
from stream_monitor.monitor import ModelMonitor
from stream_monitor.monitor.model_monitor import encode_for_core
from stream_monitor.monitor.reference import ReferenceProfile, profile_from_rows
from stream_monitor.monitor.segments import families, segment_spec
from tests.unit.monitor.streams import stream

SEGMENTED: dict[str, Any] = {
    "warmup_events": 400,
    "window": {"kind": "count", "events": 400},
    "segments": {"by": ["c0"], "warmup_events": 60, "min_events": 30},
}


def shifted_in_d(start: int) -> Any:
    """x0 moves by 2 sd from event ``start`` on, only where c0 = d (about 10% of events)."""

    def hook(i: int, features: dict[str, Any]) -> None:
        if i >= start and features["c0"] == "d":
            features["x0"] += 2.0

    return hook


def run(monitor: ModelMonitor, events: list[PredictionEvent], size: int = 500) -> list[Any]:
    out: list[Any] = []
    for at in range(0, len(events), size):
        out += monitor.update_batch(events[at : at + size])
    return out


def test_segments_close_with_their_model_and_split_its_events() -> None:
    spec = ModelSpec.model_validate(SEGMENTED)
    monitor = ModelMonitor("m", spec)
    out = run(monitor, list(stream(4_000)))
    summaries = [o for o in out if isinstance(o, WindowSummary)]
    model = [s for s in summaries if s.segment is None]
    assert len(model) == 10
    for window in model:
        parts = [
            s for s in summaries if s.segment is not None and s.window_index == window.window_index
        ]
        assert {s.segment for s in parts} == {"c0=a", "c0=b", "c0=c", "c0=d"}
        assert sum(s.sample_size for s in parts) == window.sample_size
        assert {(s.window_start, s.window_end) for s in parts} == {
            (window.window_start, window.window_end)
        }
    # each segment learnt its own reference from its first 60 events
    later = [s for s in summaries if s.segment == "c0=d" and s.window_index == 9]
    assert later
    assert later[0].drift
    assert later[0].reference_id


def test_a_shift_in_one_segment_alerts_with_the_segment_named() -> None:
    spec = ModelSpec.model_validate(SEGMENTED)
    monitor = ModelMonitor("m", spec)
    out = run(monitor, list(stream(8_000, feature_hook=shifted_in_d(5_000))))
    firing = [o for o in out if isinstance(o, AlertEvent) and o.status == "firing"]
    # the model's own x0 moves a little too (2 sd in 10% of events); no other segment alerts
    assert {a.segment for a in firing} <= {"c0=d", None}
    assert all(a.feature == "x0" or a.rule == "drift.multivariate" for a in firing)
    first = next(a for a in firing if a.segment is not None)
    assert first.feature == "x0"
    assert first.labels["segment"] == "c0=d"
    assert "segment c0=d" in first.summary
    assert first.dedup_key == dedup_key_for("m", first.rule, "x0", "c0=d")
    assert first.dedup_key != dedup_key_for("m", first.rule, "x0")
    assert first.window_end > stream_time(5_000)


def stream_time(i: int) -> int:
    return next(iter(stream(1))).timestamp + i * 100


def test_values_beyond_max_values_pool_as_other() -> None:
    spec = ModelSpec.model_validate(
        {**SEGMENTED, "segments": {**SEGMENTED["segments"], "max_values": 2}}
    )
    monitor = ModelMonitor("m", spec)
    out = run(monitor, list(stream(1_200)))
    assert monitor.segments is not None
    labels = list(monitor.segments.monitors)
    assert len(labels) == 3
    assert labels[2] == "c0=__other__"
    pooled = [o for o in out if isinstance(o, WindowSummary) and o.segment == "c0=__other__"]
    model = [o for o in out if isinstance(o, WindowSummary) and o.segment is None]
    own = [o for o in out if isinstance(o, WindowSummary) and o.segment in labels[:2]]
    assert sum(s.sample_size for s in pooled) + sum(s.sample_size for s in own) == sum(
        s.sample_size for s in model
    )


def test_segments_by_metadata_and_model_version() -> None:
    spec = ModelSpec.model_validate(
        {**SEGMENTED, "segments": {"by": ["metadata.region", "model_version"], "min_events": 10}}
    )
    monitor = ModelMonitor("m", spec)
    events = [
        e.model_copy(
            update={
                "model_version": "v2" if i % 4 == 0 else "v1",
                "metadata": {"region": "eu"} if i % 2 else None,
            }
        )
        for i, e in enumerate(stream(800))
    ]
    out = run(monitor, events)
    counts: dict[str | None, int] = {}
    for o in out:
        if isinstance(o, WindowSummary):
            counts[o.segment] = counts.get(o.segment, 0) + o.sample_size
    assert counts == {
        None: 800,
        "metadata.region=eu": 400,  # events without the key: the model's own monitors
        "model_version=v1": 600,
        "model_version=v2": 200,
    }


def test_outputs_do_not_depend_on_batching() -> None:
    events = list(stream(3_000, feature_hook=shifted_in_d(1_500)))
    spec = ModelSpec.model_validate(SEGMENTED)
    whole = run(ModelMonitor("m", spec), events, size=3_000)
    small = run(ModelMonitor("m", spec), events, size=37)
    assert [o.model_dump() for o in small] == [o.model_dump() for o in whole]


def test_time_windows_close_segments_with_their_model() -> None:
    spec = ModelSpec.model_validate(
        {
            **SEGMENTED,
            "window": {"kind": "tumbling", "size": 20.0, "allowed_lateness": 0.0},
        }
    )
    monitor = ModelMonitor("m", spec)
    out = run(monitor, list(stream(2_000)))  # 200 s of events: windows of 20 s
    summaries = [o for o in out if isinstance(o, WindowSummary)]
    model = {(s.window_start, s.window_end): s.sample_size for s in summaries if not s.segment}
    assert len(model) == 9
    for bounds, size in model.items():
        parts = [s for s in summaries if s.segment and (s.window_start, s.window_end) == bounds]
        assert sum(s.sample_size for s in parts) == size
    # the last window closes only at the end of the stream, with its segments
    flushed = monitor.flush()
    assert [s.segment for s in flushed if isinstance(s, WindowSummary)][:1] == [None]
    assert {s.segment for s in flushed if isinstance(s, WindowSummary)} > {None}


def test_late_labels_reach_the_segment_of_their_prediction() -> None:
    spec = ModelSpec.model_validate({**SEGMENTED, "performance": {"min_labels": 10}})
    monitor = ModelMonitor("m", spec)
    events = list(stream(400))
    out = monitor.update_batch(events)
    closed = [o for o in out if isinstance(o, WindowSummary) and o.segment == "c0=a"]
    assert closed
    assert closed[0].performance.get("accuracy") is None
    for event in events:
        if event.features["c0"] == "a":
            monitor.update_label(
                LabelEvent(
                    event_id=event.event_id,
                    model_id="m",
                    timestamp=event.timestamp + 1,
                    label=event.prediction,
                )
            )
    revised = [o for o in monitor.revisions() if isinstance(o, WindowSummary)]
    by_segment = {s.segment: s for s in revised}
    assert by_segment["c0=a"].revision == 1
    assert by_segment["c0=a"].performance["accuracy"] == 1.0
    assert by_segment["c0=a"].label_coverage == 1.0
    assert "c0=b" not in by_segment  # no label of its events came


def test_snapshot_mid_stream_continues_identically() -> None:
    events = list(stream(2_400, feature_hook=shifted_in_d(1_200)))
    spec = ModelSpec.model_validate(SEGMENTED)
    straight = run(ModelMonitor("m", spec), events)
    first = ModelMonitor("m", spec)
    head = run(first, events[:1_000])
    second = ModelMonitor("m", spec)
    second.restore(first.snapshot())
    tail = run(second, events[1_000:])
    assert [o.model_dump() for o in head + tail] == [o.model_dump() for o in straight]


def test_a_profile_file_gives_segments_their_references() -> None:
    events = list(stream(2_000))
    rows = [(e.features, e.score, e.prediction) for e in events]
    whole = profile_from_rows("m", {}, "binary_classification", rows, source="file")
    parts = {
        "c0=d": profile_from_rows(
            "m",
            {},
            "binary_classification",
            [r for r in rows if r[0]["c0"] == "d"],
            source="file",
        )
    }
    from dataclasses import replace

    profile = ReferenceProfile.from_json(replace(whole, segments=parts, reference_id="").to_json())
    assert set(profile.segments) == {"c0=d"}
    assert profile.reference_id != whole.reference_id
    monitor = ModelMonitor("m", ModelSpec.model_validate(SEGMENTED), profile)
    out = monitor.update_batch(list(stream(400, seed=3)))
    assert monitor.segments is not None
    assert not monitor.segments.monitors["c0=d"].warming_up  # its reference came from the file
    d = [o for o in out if isinstance(o, WindowSummary) and o.segment == "c0=d"]
    assert d[0].reference_id == parts["c0=d"].reference_id


def test_segment_spec_shares_the_significance_among_families() -> None:
    spec = ModelSpec.model_validate(
        {"segments": {"by": ["c0", "model_version"], "max_values": 4, "min_events": 40}}
    )
    assert families(spec) == 1 + 5 + 5
    child = segment_spec(spec)
    assert child.drift.significance == pytest.approx(spec.drift.significance / 11)
    assert child.drift.detector_delta == pytest.approx(spec.drift.detector_delta / 11)
    assert child.drift.min_samples == 40
    assert child.performance.detector_confidence == pytest.approx(1e-6 / 11)
    assert child.segments.by == ()
    assert child.segments.min_events == 40  # its windows are judged from the model's setting


@pytest.mark.parametrize(
    ("segments", "features", "message"),
    [
        ({"by": ["x"]}, {"x": "numeric"}, "entry 'x' is a numeric feature"),
        ({"by": ["metadata."]}, {}, "entry 'metadata.' names nothing"),
        ({"by": ["c", "c"]}, {}, "lists an entry twice"),
        ({"by": ["c"], "max_values": 0}, {}, "greater than or equal to 1"),
    ],
)
def test_bad_segment_settings_say_what_to_do(
    segments: dict[str, Any], features: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ModelSpec.model_validate({"features": features, "segments": segments})


def test_native_grouping_and_following_refuse_misuse() -> None:
    event = next(iter(stream(1)))
    batch = decode_batch([encode_for_core(event)])
    assert batch.segments([0], "c0") == [(event.features["c0"], [0])]
    with pytest.raises(ValueError, match="no event at position 3"):
        batch.segments([3], "c0")


def test_metrics_show_segments_beside_their_model() -> None:
    from stream_monitor.observability.metrics import WorkerMetrics

    monitor = ModelMonitor("m", ModelSpec.model_validate(SEGMENTED))
    summaries = [o for o in run(monitor, list(stream(1_200))) if isinstance(o, WindowSummary)]
    metrics = WorkerMetrics()
    for summary in summaries:
        metrics.summary(summary)
    text = metrics.exposition().decode()
    last = {s.segment: s for s in summaries}
    for segment, label in ((None, ""), ("c0=b", "c0=b")):
        psi = last[segment].drift["x1"]["psi"]
        line = (
            f'stream_monitor_drift_statistic{{feature="x1",model="m",segment="{label}",'
            f'statistic="psi"}} {psi}'
        )
        assert line in text
