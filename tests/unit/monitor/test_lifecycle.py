"""Alert lifecycle: fire once, repeat, escalate, resolve with hysteresis, cooldown."""

from __future__ import annotations

from stream_monitor.config.models import AlertingSpec
from stream_monitor.events.alerts import AlertEvent, Severity, dedup_key_for
from stream_monitor.monitor.lifecycle import AlertTracker, RuleCheck
from stream_monitor.monitor.windows import WindowBounds

MINUTE = 60_000


def check(severity: Severity | None, value: float = 0.3) -> RuleCheck:
    return RuleCheck(
        rule="drift.psi",
        kind="drift",
        feature="amount",
        statistic="psi",
        value=value,
        threshold=0.1,
        severity=severity,
        evidence={"p_value": 1e-9},
    )


def run(tracker: AlertTracker, severities: list[Severity | None]) -> list[tuple[int, AlertEvent]]:
    """Feed one check per one-minute window; returns (window number, alert)."""
    out = []
    for i, severity in enumerate(severities):
        window = WindowBounds(i, i * MINUTE, (i + 1) * MINUTE)
        alert = tracker.observe(
            check(severity), window=window, sample_size=1000, model_version="v1"
        )
        if alert is not None:
            out.append((i, alert))
    return out


def tracker(**alerting: float) -> AlertTracker:
    spec = AlertingSpec(repeat_interval=300, resolve_after=3, cooldown=600, **alerting)
    return AlertTracker("fraud", spec, runbook_url="https://runbooks/x", labels={"team": "risk"})


def test_fires_once_then_repeats_at_the_interval() -> None:
    alerts = run(tracker(), ["warning"] * 12)
    assert [i for i, _ in alerts] == [0, 5, 10]
    first = alerts[0][1]
    assert (first.status, first.severity, first.starts_at, first.ends_at) == (
        "firing",
        "warning",
        0,
        None,
    )
    assert first.dedup_key == dedup_key_for("fraud", "drift.psi", "amount")
    assert first.runbook_url == "https://runbooks/x"
    assert first.labels == {"team": "risk"}
    assert first.model_version == "v1"
    assert first.evidence == {"p_value": 1e-9}
    assert all(a.starts_at == 0 for _, a in alerts)  # one incident
    assert len({a.alert_id for _, a in alerts}) == 3


def test_escalation_notifies_at_once() -> None:
    alerts = run(tracker(), ["warning", "warning", "critical", "critical", "warning"])
    assert [(i, a.severity) for i, a in alerts] == [(0, "warning"), (2, "critical")]


def test_resolves_after_k_healthy_windows_only() -> None:
    alerts = run(tracker(), ["critical", None, None, "warning", None, None, None, None])
    assert [(i, a.status) for i, a in alerts] == [(0, "firing"), (6, "resolved")]
    resolved = alerts[-1][1]
    assert resolved.ends_at == 7 * MINUTE
    assert resolved.starts_at == 0
    assert resolved.severity == "critical"
    assert "resolved after 3 healthy window(s)" in resolved.summary


def test_cooldown_suppresses_flapping() -> None:
    t = tracker()
    sequence: list[Severity | None] = ["warning", None, None, None]  # resolves at window 3
    sequence += ["warning"] * 12  # within the 10-minute cooldown until window 13
    alerts = run(t, sequence)
    assert [(i, a.status) for i, a in alerts] == [(0, "firing"), (3, "resolved"), (13, "firing")]
    assert t.suppressed == 9
    assert alerts[2][1].starts_at == 13 * MINUTE  # a new incident, same dedup key
    assert alerts[2][1].dedup_key == alerts[0][1].dedup_key
    assert alerts[2][1].alert_id != alerts[0][1].alert_id


def test_same_input_gives_same_ids() -> None:
    sequence: list[Severity | None] = ["warning", "warning", None, None, None, "critical"]
    first = [a.alert_id for _, a in run(tracker(), sequence)]
    assert len(first) == 2  # fired, resolved; the critical falls in the cooldown
    assert first == [a.alert_id for _, a in run(tracker(), sequence)]
    assert tracker().firing() == {}


def test_healthy_checks_without_incident_do_nothing() -> None:
    assert run(tracker(), [None, None]) == []


def test_only_firing_incidents_want_healthy_checks() -> None:
    t = tracker()
    assert not t.tracks("drift.psi", "amount")  # callers skip building its healthy checks
    run(t, ["warning"])
    assert t.tracks("drift.psi", "amount")
    assert not t.tracks("drift.psi", "country")
    assert not t.tracks("quality.missing", "amount")
    run(t, [None, None, None])  # resolves
    assert not t.tracks("drift.psi", "amount")
    assert t.firing() == {}


def test_an_older_snapshots_firing_incident_still_resolves() -> None:
    firing = tracker()
    run(firing, ["critical"])
    state = firing.__dict__.copy()
    del state["open"]  # as pickled before firing incidents were kept by check
    restored = AlertTracker.__new__(AlertTracker)
    restored.__setstate__(state)
    assert restored.tracks("quality.missing", "x")  # not known: every healthy check counts
    alerts = run(restored, [None, None, None])
    assert [(i, a.status) for i, a in alerts] == [(2, "resolved")]
    assert not restored.tracks("drift.psi", "amount")  # known again once none fires
    calm = tracker()
    state = calm.__dict__.copy()
    del state["open"]
    restored.__setstate__(state)
    assert restored.open == {}
