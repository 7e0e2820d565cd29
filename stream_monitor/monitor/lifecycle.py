"""The alert lifecycle: one incident is one page, not a thousand.

A rule check that breaches opens an incident and fires once; while it keeps breaching the alert
repeats every ``repeat_interval`` (and at once when it escalates from warning to critical); it
resolves after ``resolve_after`` consecutive healthy windows; after resolving, the same rule stays
quiet for ``cooldown`` seconds against flapping. Time is the windows' event time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stream_monitor.config.models import AlertingSpec
from stream_monitor.events.alerts import (
    AlertEvent,
    AlertKind,
    AlertStatus,
    Severity,
    alert_id_for,
    dedup_key_for,
)
from stream_monitor.monitor.windows import WindowBounds

__all__ = ["AlertTracker", "RuleCheck"]

_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class RuleCheck:
    """What one rule concluded for one feature in one window; ``severity`` None means healthy."""

    rule: str
    kind: AlertKind
    feature: str | None
    statistic: str
    value: float | None
    threshold: float | None
    severity: Severity | None
    evidence: dict[str, Any] = field(default_factory=dict)
    higher_is_better: bool = False  # performance metrics such as accuracy


@dataclass
class _Incident:
    status: str  # "firing" or "resolved"
    severity: Severity
    starts_at: int
    last_sent: int
    sequence: int
    healthy: int = 0
    resolved_at: int | None = None


class AlertTracker:
    """Turns rule checks into firing and resolved alert events for one model."""

    def __init__(
        self,
        model_id: str,
        alerting: AlertingSpec,
        runbook_url: str | None = None,
        labels: dict[str, str] | None = None,
        segment: str | None = None,
    ) -> None:
        self.model_id = model_id
        self.segment = segment
        self.repeat_ms = int(alerting.repeat_interval * 1000)
        self.resolve_after = alerting.resolve_after
        self.cooldown_ms = int(alerting.cooldown * 1000)
        self.runbook_url = runbook_url
        self.labels = dict(labels or {})
        if segment is not None:
            self.labels["segment"] = segment
        self.incidents: dict[str, _Incident] = {}
        self.suppressed = 0  # breaches silenced by the cooldown
        # (rule, feature) -> dedup key of each firing incident: a healthy check of anything
        # else has nothing to count towards, and costs no key. None: not known for the
        # incidents of an older snapshot (every healthy check is then looked up by its key).
        self.open: dict[tuple[str, str | None], str] | None = {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "open" not in state:  # a snapshot from before ``open`` was kept
            firing = any(i.status == "firing" for i in self.incidents.values())
            self.open = None if firing else {}

    def tracks(self, rule: str, feature: str | None) -> bool:
        """Whether a healthy check of ``rule`` on ``feature`` can change anything: its
        incident is firing (callers need not build the healthy checks of other rules)."""
        return self.open is None or (rule, feature) in self.open

    def firing(self) -> dict[str, Severity]:
        """Dedup keys of open incidents with their severity."""
        return {k: i.severity for k, i in self.incidents.items() if i.status == "firing"}

    def observe(
        self,
        check: RuleCheck,
        *,
        window: WindowBounds,
        sample_size: int,
        model_version: str | None,
    ) -> AlertEvent | None:
        """Feed one check; returns the alert to publish, if any."""
        if check.severity is None:
            if self.open is None:  # an older snapshot's incidents: by their keys
                key = dedup_key_for(self.model_id, check.rule, check.feature, self.segment)
            else:
                found = self.open.get((check.rule, check.feature))
                if found is None:
                    return None  # nothing firing to count towards resolving
                key = found
            incident = self._healthy(key, window.end)
        else:
            key = dedup_key_for(self.model_id, check.rule, check.feature, self.segment)
            incident = self._breach(key, check.severity, window)
            if incident is not None and self.open is not None:
                self.open[(check.rule, check.feature)] = key
        if incident is None:
            return None
        return self._event(
            key,
            incident=incident,
            check=check,
            window=window,
            sample_size=sample_size,
            model_version=model_version,
        )

    def _healthy(self, key: str, now: int) -> _Incident | None:
        """A healthy window: count towards resolving; the incident if it resolves now."""
        incident = self.incidents.get(key)
        if incident is None or incident.status != "firing":
            return None
        incident.healthy += 1
        if incident.healthy < self.resolve_after:
            return None
        incident.status = "resolved"
        incident.resolved_at = now
        incident.sequence += 1
        if self.open is not None:
            self.open = {check: k for check, k in self.open.items() if k != key}
        elif not self.firing():  # the older snapshot's incidents are all resolved
            self.open = {}
        return incident

    def _breach(self, key: str, severity: Severity, window: WindowBounds) -> _Incident | None:
        """A breaching check: the incident if it fires, repeats or escalates now."""
        now = window.end
        incident = self.incidents.get(key)
        if incident is not None and incident.status == "firing":
            incident.healthy = 0
            escalated = _RANK[severity] > _RANK[incident.severity]
            if not escalated and now - incident.last_sent < self.repeat_ms:
                return None
            if escalated:
                incident.severity = severity
            incident.last_sent = now
            incident.sequence += 1
            return incident
        in_cooldown = (
            incident is not None
            and incident.resolved_at is not None
            and now - incident.resolved_at < self.cooldown_ms
        )
        if in_cooldown:
            self.suppressed += 1
            return None
        sequence = incident.sequence + 1 if incident else 0
        incident = _Incident("firing", severity, window.start, now, sequence)
        self.incidents[key] = incident
        return incident

    def _event(
        self,
        key: str,
        *,
        incident: _Incident,
        check: RuleCheck,
        window: WindowBounds,
        sample_size: int,
        model_version: str | None,
    ) -> AlertEvent:
        status: AlertStatus = "firing" if incident.status == "firing" else "resolved"
        subject = check.feature or "prediction"
        if self.segment is not None:
            subject = f"{subject} in segment {self.segment}"
        if check.value is None:  # a change detector: no statistic to quote
            measured = f"{check.statistic} detected a change"
        else:
            word = "<=" if check.kind == "performance" and check.higher_is_better else ">="
            measured = f"{check.statistic} {_fmt(check.value)} {word} {_fmt(check.threshold)}"
        if status == "firing":
            summary = f"{self.model_id}: {check.rule} on {subject} is {check.severity}: {measured}"
        else:
            summary = (
                f"{self.model_id}: {check.rule} on {subject} resolved after "
                f"{self.resolve_after} healthy window(s)"
            )
        return AlertEvent(
            alert_id=alert_id_for(key, status, window.end, incident.sequence),
            dedup_key=key,
            status=status,
            severity=incident.severity,
            model_id=self.model_id,
            model_version=model_version,
            kind=check.kind,
            rule=check.rule,
            feature=check.feature,
            segment=self.segment,
            statistic=check.statistic,
            value=check.value,
            threshold=check.threshold,
            window_start=window.start,
            window_end=window.end,
            sample_size=sample_size,
            starts_at=incident.starts_at,
            ends_at=incident.resolved_at if status == "resolved" else None,
            summary=summary,
            evidence=check.evidence,
            runbook_url=self.runbook_url,
            labels=self.labels,
        )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
