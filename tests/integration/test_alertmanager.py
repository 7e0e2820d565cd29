"""The Alertmanager sink against a real Prometheus Alertmanager (built from its Go module by
.ci/run: `go install github.com/prometheus/alertmanager/cmd/alertmanager@v0.28.1`)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stream_monitor.config.sinks import AlertmanagerSinkSpec
from stream_monitor.devtools.broker.process import free_port
from stream_monitor.events.alerts import AlertEvent
from stream_monitor.sinks.alertmanager import AlertmanagerSink
from stream_monitor.sinks.base import SinkError

T0 = 1_795_800_000_000


def _binary() -> str | None:
    found = os.environ.get("STREAM_MONITOR_ALERTMANAGER") or shutil.which("alertmanager")
    default = Path.home() / "go" / "bin" / "alertmanager"
    return found or (str(default) if default.exists() else None)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A running Alertmanager on loopback; its base URL."""
    binary = _binary()
    if binary is None:
        message = (
            "Alertmanager is needed: go install "
            "github.com/prometheus/alertmanager/cmd/alertmanager@v0.28.1"
        )
        if os.environ.get("STREAM_MONITOR_REQUIRE_ALERTMANAGER"):
            pytest.fail(message)
        pytest.skip(message)
    config = tmp_path / "alertmanager.yml"
    config.write_text('route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n')
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Alertmanager did not get ready in 30 s"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def alert(status: str = "firing", ends_at: int | None = None) -> AlertEvent:
    return AlertEvent(
        alert_id=f"a-{status}",
        dedup_key="fraud:drift.psi:amount",
        status=status,  # type: ignore[arg-type]
        severity="critical",
        model_id="fraud",
        kind="drift",
        rule="drift.psi",
        feature="amount",
        statistic="psi",
        value=0.4,
        threshold=0.25,
        window_start=T0,
        window_end=T0 + 60_000,
        sample_size=1000,
        starts_at=T0,
        ends_at=ends_at,
        summary="fraud: amount drifted (psi 0.40 > 0.25)",
        evidence={"reference_id": "r1", "top": ["amount"]},
        runbook_url="https://runbooks.example/drift",
        labels={"team": "risk"},
    )


async def test_alerts_fire_are_re_posted_and_resolve_in_alertmanager(alertmanager: str) -> None:
    spec = AlertmanagerSinkSpec(
        url=alertmanager, repost_interval=0.5, generator_url="http://dashboard.example"
    )
    sink = AlertmanagerSink(spec)
    async with httpx.AsyncClient(base_url=alertmanager) as api:
        try:
            await sink.publish(alert())
            [shown] = (await api.get("/api/v2/alerts")).json()
            assert shown["labels"] == {
                "alertname": "drift.psi",
                "model": "fraud",
                "feature": "amount",
                "kind": "drift",
                "severity": "critical",
                "team": "risk",
            }
            assert shown["annotations"]["summary"] == alert().summary
            assert shown["annotations"]["runbook_url"] == "https://runbooks.example/drift"
            assert '"reference_id":"r1"' in shown["annotations"]["evidence"]
            assert shown["startsAt"].startswith("2026-11-27T")  # T0, in RFC 3339
            assert shown["generatorURL"] == "http://dashboard.example/?model=fraud"
            assert shown["status"]["state"] == "active"
            first = shown["updatedAt"]
            await asyncio.sleep(1.5)  # re-posted while it fires
            [again] = (await api.get("/api/v2/alerts")).json()
            assert again["updatedAt"] > first
            resolved_at = int(time.time() * 1000) - 1_000
            await sink.publish(alert("resolved", ends_at=resolved_at))
            assert (await api.get("/api/v2/alerts", params={"active": "true"})).json() == []
            assert sink.firing == {}
        finally:
            await sink.close()


async def test_a_refused_post_raises_for_the_bus_to_retry(alertmanager: str) -> None:
    sink = AlertmanagerSink(AlertmanagerSinkSpec(url=f"{alertmanager}/nowhere"))
    try:
        with pytest.raises(SinkError, match="HTTP 404 from Alertmanager"):
            await sink.publish(alert())
    finally:
        await sink.close()
    closed = AlertmanagerSink(AlertmanagerSinkSpec(url=f"http://127.0.0.1:{free_port()}"))
    try:
        with pytest.raises(SinkError, match="ConnectError"):
            await closed.publish(alert())
    finally:
        await closed.close()
