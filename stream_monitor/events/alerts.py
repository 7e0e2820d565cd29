"""Output events: alerts and window summaries. Pure data, no I/O.

Alerts follow what on-call tools expect (Prometheus Alertmanager, PagerDuty Events v2): a stable
``dedup_key`` per incident, ``status`` firing then resolved, severity, start and end, labels,
evidence and a runbook link. Ids are derived from the input, so replays give the same ids.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from pydantic import Field

from stream_monitor.events.schemas import _Event, _Id

__all__ = [
    "AlertEvent",
    "AlertKind",
    "AlertStatus",
    "Output",
    "Severity",
    "WindowSummary",
    "alert_id_for",
    "dedup_key_for",
    "incident_status",
]

AlertStatus = Literal["firing", "resolved"]
Severity = Literal["info", "warning", "critical"]
AlertKind = Literal[
    "drift", "prediction_drift", "performance", "concept_drift", "data_quality", "pipeline"
]
_Stat = Annotated[float, Field(allow_inf_nan=False)] | None


_RANK = {"info": 0, "warning": 1, "critical": 2}
_STATUS = {0: "ok", 1: "warning", 2: "critical"}


def incident_status(*sources: Iterable[Mapping[str, Any]]) -> tuple[str, int]:
    """A model's status (ok, warning, critical) and how many incidents fire.

    Each source yields alerts (or rows with ``dedup_key``, ``status``, ``severity`` and
    ``window_end``); the latest of each incident across all sources decides, so a stored and a
    live view of the same incidents merge.
    """
    latest: dict[str, Mapping[str, Any]] = {}
    for alerts in sources:
        for alert in alerts:
            known = latest.get(alert["dedup_key"])
            if known is None or int(alert["window_end"]) >= int(known["window_end"]):
                latest[alert["dedup_key"]] = alert
    firing = [a for a in latest.values() if a["status"] == "firing"]
    worst = max((_RANK.get(a["severity"], 0) for a in firing), default=0)
    return _STATUS[worst], len(firing)


def dedup_key_for(
    model_id: str, rule: str, feature: str | None = None, segment: str | None = None
) -> str:
    """Stable key of one incident: the same model, rule, feature and segment always give the
    same key (a model's own incidents, without a segment, keep the key they always had)."""
    parts = (model_id, rule, feature or "") + ((segment,) if segment else ())
    material = "\x1f".join(parts)
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def alert_id_for(dedup_key: str, status: AlertStatus, window_end: int, sequence: int = 0) -> str:
    """Id of one alert event, derived from the input so reprocessing repeats it exactly."""
    material = f"{dedup_key}\x1f{status}\x1f{window_end}\x1f{sequence}"
    return hashlib.sha256(material.encode()).hexdigest()[:32]


class AlertEvent(_Event):
    """A rule breached (``firing``) or recovered (``resolved``) for one model."""

    alert_id: _Id = Field(description="Unique, deterministic id of this alert event.")
    dedup_key: _Id = Field(description="Same for every event of one incident.")
    status: AlertStatus = Field(description="firing or resolved.")
    severity: Severity = Field(description="info, warning or critical.")
    model_id: _Id = Field(description="Model the alert is about.")
    model_version: str | None = Field(None, description="Model version seen in the window.")
    kind: AlertKind = Field(description="What went wrong: drift, performance, data_quality, ...")
    rule: _Id = Field(description="Name of the rule that fired.")
    feature: str | None = Field(None, description="Feature concerned, if any.")
    segment: str | None = Field(
        None, description="Segment concerned (e.g. channel=phone); null for the whole model."
    )
    statistic: str = Field(description="Statistic compared with the threshold, e.g. psi.")
    value: _Stat = Field(description="Measured value of the statistic.")
    threshold: _Stat = Field(description="Threshold that was crossed.")
    window_start: int = Field(description="Start of the window (epoch ms).")
    window_end: int = Field(description="End of the window (epoch ms).")
    sample_size: int = Field(ge=0, description="Events in the window.")
    starts_at: int = Field(description="When the incident started (event time, epoch ms).")
    ends_at: int | None = Field(None, description="When it resolved (epoch ms); null if firing.")
    summary: str = Field(description="One line for humans.")
    evidence: dict[str, Any] = Field(
        default_factory=dict,
        description="Reference version, top drifting features and other supporting numbers.",
    )
    runbook_url: str | None = Field(None, description="What the on-call engineer should do.")
    labels: dict[str, str] = Field(default_factory=dict, description="Routing labels.")


class WindowSummary(_Event):
    """What one closed window of one model measured; feeds the metrics topic and the dashboard."""

    model_id: _Id = Field(description="Model the window belongs to.")
    model_version: str | None = Field(None, description="Latest model version seen.")
    segment: str | None = Field(
        None,
        description="The segment (e.g. channel=phone) this window counts; null for all of the "
        "model's events.",
    )
    window_kind: Literal["count", "tumbling", "hopping"] = Field(description="Window type.")
    window_index: int = Field(ge=0, description="Sequence number of the window for this model.")
    window_start: int = Field(description="Start (epoch ms, inclusive).")
    window_end: int = Field(description="End (epoch ms, exclusive for time windows).")
    revision: int = Field(0, ge=0, description="Bumped when late labels revise the window.")
    sample_size: int = Field(ge=0, description="Events in the window.")
    late_events: int = Field(0, ge=0, description="Events that arrived after the window closed.")
    drift: dict[str, dict[str, _Stat]] = Field(
        default_factory=dict, description="Feature to statistic to value."
    )
    prediction_drift: dict[str, _Stat] = Field(
        default_factory=dict, description="Statistic to value for the prediction or score."
    )
    multivariate: dict[str, _Stat] = Field(
        default_factory=dict,
        description="Joint drift of the numeric features: reconstruction_error and error_z "
        "(against the reference's held-out band), max_pair_z (the largest |Fisher z| of a "
        "pair's correlation), joint_z (the largest |z| of these) and p_value (Bonferroni).",
    )
    performance: dict[str, _Stat] = Field(
        default_factory=dict, description="Metric to value (labelled events only)."
    )
    quality: dict[str, dict[str, _Stat]] = Field(
        default_factory=dict, description="Feature to data-quality measure to value."
    )
    label_coverage: _Stat = Field(None, description="Share of events with a label.")
    latency_ms: dict[str, _Stat] = Field(
        default_factory=dict, description="Percentiles of latency_ms (p50, p95, p99, max)."
    )
    event_lag_ms: dict[str, _Stat] = Field(
        default_factory=dict,
        description="How far behind the newest event time events arrived (p50, p95, p99, max).",
    )
    detections: dict[str, int] = Field(
        default_factory=dict, description="Change-detector signals per feature in the window."
    )
    reference_id: str | None = Field(None, description="Reference the drift was measured against.")
    distributions: dict[str, dict[str, list[Any]]] = Field(
        default_factory=dict,
        description="Feature (and '<prediction>') to its distribution in the window beside the "
        "reference's: 'edges' (numeric: inner edges of the decile bins) or 'categories' (the "
        "reference's top ones, then __other__ and __unseen__), 'reference' (shares per bin) and "
        "'window' (counts per bin).",
    )
    label_delay_ms: dict[str, _Stat] = Field(
        default_factory=dict, description="Label arrival delay after the prediction (p50..max)."
    )
    label_stats: dict[str, int] = Field(
        default_factory=dict,
        description="Model-wide label join counters: matched, matched_early, unmatched_labels, "
        "expired_predictions, evicted_predictions, labels_too_late.",
    )


Output = WindowSummary | AlertEvent  # what a monitor gives: summaries and alerts, in order
