"""The worker's /metrics, /healthz and /readyz on the real broker, read like Prometheus would."""

from __future__ import annotations

import asyncio
import base64
import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml
from prometheus_client.parser import text_string_to_metric_families

from stream_monitor.runtime.worker import Worker

from .runtime_helpers import isolated_settings, produce
from .test_failures import EVENTS, stream

TOKEN = "s3cret-token-for-tests"


DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def deploy_metrics() -> set[str]:
    """Metric families named in deploy/'s Grafana dashboard and Prometheus rules."""
    dashboard = orjson.loads((DEPLOY / "grafana" / "stream-monitor.json").read_bytes())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs.append(dashboard["templating"]["list"][1]["query"])
    rules = yaml.safe_load((DEPLOY / "prometheus" / "stream-monitor-rules.yml").read_text())
    exprs += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    names = {n for e in exprs for n in re.findall(r"stream_monitor_[a-z_]+", e)}
    return {re.sub(r"_(total|bucket|sum|count|created)$", "", n) for n in names}


def samples(text: str) -> dict[str, list[Any]]:
    """Metric family name -> its samples, parsed by prometheus-client's own text parser."""
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


async def test_metrics_health_and_readiness(kafka_bootstrap: str) -> None:
    settings = isolated_settings(kafka_bootstrap)
    worker = Worker(settings)
    assert worker.readiness() == (False, ["no partition assignment yet"])
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.ready.wait(), 60)
        base = f"http://127.0.0.1:{worker.http_port}"
        bad = orjson.dumps({"event_id": "x", "model_id": "model-0", "timestamp": "soon"})
        await produce(kafka_bootstrap, settings.topics.predictions, [*stream(), (b"m", bad)])
        async with asyncio.timeout(60):
            while worker.stats.consumed < EVENTS + 1:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=base) as client:
            health = await client.get("/healthz")
            ready = await client.get("/readyz")
            scraped = await client.get("/metrics")
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
    assert health.status_code == 200
    assert health.json() == {"status": "alive"}
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "reasons": []}
    assert scraped.headers["content-type"].startswith("text/plain")
    metrics = samples(scraped.text)
    # Every metric the Grafana dashboard and the Prometheus rules under deploy/ use is exposed.
    used = deploy_metrics()
    assert len(used) >= 10
    assert used <= set(metrics), f"not on /metrics: {sorted(used - set(metrics))}"
    topic = settings.topics.predictions
    consumed = {
        s.labels["partition"]: s.value
        for s in metrics["stream_monitor_events_consumed"]
        if s.name.endswith("_total") and s.labels["topic"] == topic
    }
    assert sum(consumed.values()) == EVENTS + 1
    processed = {
        s.labels["model"]: s.value
        for s in metrics["stream_monitor_events_processed"]
        if s.name.endswith("_total")
    }
    assert processed == {f"model-{i}": EVENTS / 4 for i in range(4)}
    dead = [s for s in metrics["stream_monitor_events_dead_lettered"] if s.name.endswith("_total")]
    assert [(s.labels["field"], s.value) for s in dead] == [("timestamp", 1.0)]
    fired = [s for s in metrics["stream_monitor_alerts"] if s.name.endswith("_total")]
    assert sum(s.value for s in fired) == worker.stats.alerts > 0
    drift = metrics["stream_monitor_drift_statistic"]
    assert {s.labels["model"] for s in drift} == {f"model-{i}" for i in range(4)}
    assert any(s.labels["feature"] == "amount" and s.labels["statistic"] == "psi" for s in drift)
    lags = metrics["stream_monitor_consumer_lag"]
    assert {(s.labels["topic"], s.value) for s in lags} == {(topic, 0.0)}
    assert len(metrics["stream_monitor_checkpoint_age_seconds"]) == 2
    count = [s for s in metrics["stream_monitor_batch_seconds"] if s.name.endswith("_count")]
    assert count[0].value >= 2
    assert metrics["stream_monitor_assigned_partitions"][0].value == 2
    assert metrics["stream_monitor_ready"][0].value == 1


async def test_endpoints_require_the_token_when_one_is_set(kafka_bootstrap: str) -> None:
    settings = isolated_settings(kafka_bootstrap, http={"port": 0, "auth_token": TOKEN})
    worker = Worker(settings)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.ready.wait(), 60)
        basic = base64.b64encode(f"prometheus:{TOKEN}".encode()).decode()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{worker.http_port}") as client:
            anonymous = await client.get("/metrics")
            wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
            bearer = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            browser = await client.get("/healthz", headers={"Authorization": f"Basic {basic}"})
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Basic")
    assert TOKEN not in anonymous.text
    assert wrong.status_code == 401
    assert bearer.status_code == 200
    assert TOKEN not in bearer.text  # the secret never appears in what is served
    assert browser.status_code == 200
