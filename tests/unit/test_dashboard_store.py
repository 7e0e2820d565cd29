"""The dashboard's store: revisions, status from open incidents, bounds, live fan-out."""

from __future__ import annotations

from typing import Any

from stream_monitor.dashboard.store import DashboardStore


def summary(model: str, index: int, revision: int = 0, psi: float = 0.0) -> dict[str, Any]:
    return {
        "model_id": model,
        "window_index": index,
        "window_end": 1_000 * (index + 1),
        "sample_size": 100,
        "revision": revision,
        "drift": {"x": {"psi": psi}},
    }


def alert(
    model: str, key: str, status: str, severity: str, *, end: int, aid: str
) -> dict[str, Any]:
    return {
        "alert_id": aid,
        "dedup_key": key,
        "model_id": model,
        "status": status,
        "severity": severity,
        "window_end": end,
        "rule": "drift.psi",
        "summary": "s",
    }


def test_a_revision_replaces_its_window_and_a_stale_one_is_ignored() -> None:
    store = DashboardStore()
    store.add_summary(summary("m", 1, revision=0, psi=0.1))
    store.add_summary(summary("m", 0))
    store.add_summary(summary("m", 1, revision=2, psi=0.3))
    store.add_summary(summary("m", 1, revision=1, psi=0.2))  # older than what is shown
    detail = store.model("m")
    assert detail is not None
    assert [w["window_index"] for w in detail["windows"]] == [0, 1]
    assert detail["windows"][1]["drift"]["x"]["psi"] == 0.3
    assert store.models()[0]["last_window"]["window_index"] == 1
    assert store.model("unknown") is None


def test_status_is_the_worst_firing_incident_and_resolving_clears_it() -> None:
    store = DashboardStore()
    store.add_summary(summary("m", 0))
    assert store.models()[0]["status"] == "ok"
    store.add_alert(alert("m", "k1", "firing", "warning", end=1_000, aid="a1"))
    store.add_alert(alert("m", "k2", "firing", "critical", end=1_000, aid="a2"))
    assert store.models()[0]["status"] == "critical"
    assert store.models()[0]["firing"] == 2
    store.add_alert(alert("m", "k2", "resolved", "critical", end=2_000, aid="a3"))
    assert store.models()[0]["status"] == "warning"
    store.add_alert(alert("m", "k1", "firing", "warning", end=1_000, aid="a1"))  # a replayed repeat
    assert len(store.model("m")["alerts"]) == 3  # type: ignore[index]
    store.add_alert(alert("m", "k1", "resolved", "warning", end=3_000, aid="a4"))
    assert store.models()[0]["status"] == "ok"
    newest = store.model("m")["alerts"][0]  # type: ignore[index]
    assert newest["alert_id"] == "a4"


def test_bounds_keep_the_newest_windows_and_a_stalled_subscriber_loses_updates_only() -> None:
    store = DashboardStore(max_windows=3)
    queue = store.subscribe()
    for i in range(1_005):
        store.add_summary(summary("m", i))
    detail = store.model("m")
    assert detail is not None
    assert [w["window_index"] for w in detail["windows"]] == [1_002, 1_003, 1_004]
    assert queue.qsize() == 1_000
    assert store.dropped_updates == 5
    assert queue.get_nowait()[0] == "summary"
    store.unsubscribe(queue)
    store.add_summary(summary("m", 2_000))
    assert queue.qsize() == 999


def test_segments_are_kept_beside_their_model_and_bounded_alike() -> None:
    store = DashboardStore(max_windows=2)
    for i in range(4):
        store.add_summary(summary("m", i, psi=0.1))
        for segment in ("c=a", "c=b"):
            store.add_summary({**summary("m", i, psi=0.5), "segment": segment})
    store.add_summary({**summary("m", 3, revision=1, psi=0.9), "segment": "c=b"})
    detail = store.model("m")
    assert detail is not None
    windows = [(w["window_index"], w.get("segment")) for w in detail["windows"]]
    assert windows == [(2, None), (2, "c=a"), (2, "c=b"), (3, None), (3, "c=a"), (3, "c=b")]
    assert detail["windows"][3]["drift"]["x"]["psi"] == 0.1  # the model's, not a segment's
    assert detail["windows"][5]["drift"]["x"]["psi"] == 0.9  # the segment's revision
    listed = store.models()[0]
    assert listed["windows"] == 2
    assert listed["segments"] == ["c=a", "c=b"]
    assert listed["last_window"]["window_index"] == 3
