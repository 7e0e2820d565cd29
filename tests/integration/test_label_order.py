"""Predictions and delayed labels on their own topics, against the real broker.

A partition's predictions and labels are merged by record timestamp, so the worker's outputs are
those of ``backtest`` reading the same events in timestamp order, however the fetches happen to
bring the two topics, and after a kill -9 in the middle too.
"""

from __future__ import annotations

import asyncio
import random
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from stream_monitor.config import Settings
from stream_monitor.devtools.bench.chaos import final
from stream_monitor.offline.backtest import run_backtest
from stream_monitor.runtime.topics import ensure_topics
from stream_monitor.runtime.worker import Worker

from .runtime_helpers import isolated_settings, read_all, run_worker_until
from .test_failures import environment, worker_process

T0 = 1_795_800_000_000
MODELS = 4
EVENTS = 6_000
DELAY_MS = 25_000  # a label comes 250 events (of all models) after its prediction


def events() -> list[tuple[str, int, bytes, bytes]]:
    """(kind, timestamp, key, value) in timestamp order, a prediction before a label of the same
    millisecond. Models 0 and 1 start being wrong half of the time half way."""
    rng = random.Random(11)
    out: list[tuple[str, int, bytes, bytes]] = []
    for i in range(EVENTS):
        model = f"model-{i % MODELS}"
        at = T0 + i * 100
        score = rng.random()
        prediction = int(score > 0.5)
        wrong = rng.random() < (0.5 if i >= EVENTS // 2 and i % MODELS < 2 else 0.1)
        features = {"amount": rng.gauss(50, 10), "country": rng.choice("ABC")}
        event = {
            "event_id": f"e{i}",
            "model_id": model,
            "timestamp": at,
            "features": features,
            "prediction": prediction,
            "score": score,
        }
        label = {
            "event_id": f"e{i}",
            "model_id": model,
            "timestamp": at + DELAY_MS,
            "label": 1 - prediction if wrong else prediction,
        }
        out.append(("prediction", at, model.encode(), orjson.dumps(event)))
        out.append(("label", at + DELAY_MS, model.encode(), orjson.dumps(label)))
    out.sort(key=lambda e: (e[1], e[0] == "label"))
    return out


async def produce_topics(settings: Settings, records: list[tuple[str, int, bytes, bytes]]) -> None:
    """Every prediction first, then every label (the fetches see them far apart), each with
    its event time as the record timestamp."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await producer.start()
    try:
        for kind in ("prediction", "label"):
            topic = settings.topics.predictions if kind == "prediction" else settings.topics.labels
            for chosen, at, key, value in records:
                if chosen == kind:
                    await producer.send(topic, value, key=key, timestamp_ms=at)
            await producer.flush()
    finally:
        await producer.stop()


def expected(settings: Settings, path: Path) -> tuple[set[str], dict[tuple[str, int], Any]]:
    """Alert ids and final window summaries of backtest over the same events; the labels must
    matter: windows revised by late labels, and alerts from them."""
    alerts: dict[str, str] = {}
    summaries: list[dict[str, Any]] = []

    def alert(raw: bytes) -> None:
        data = orjson.loads(raw)
        alerts[data["alert_id"]] = data["rule"]

    run_backtest(
        settings, path, alert, lambda raw: summaries.append(orjson.loads(raw)), flush=False
    )
    rules = set(alerts.values())
    assert "detector.hddm_a" in rules or any(r.startswith("performance.") for r in rules), rules
    assert any(s["revision"] > 0 for s in summaries), "no window revised by a late label"
    return set(alerts), final(summaries)


async def produced(settings: Settings) -> tuple[set[str], dict[tuple[str, int], Any]]:
    bootstrap = settings.kafka.bootstrap_servers
    alerts = {
        orjson.loads(r.value)["alert_id"] for r in await read_all(bootstrap, settings.topics.alerts)
    }
    summaries = [orjson.loads(r.value) for r in await read_all(bootstrap, settings.topics.metrics)]
    return alerts, final(summaries)


@dataclass
class Scenario:
    settings: Settings
    records: list[tuple[str, int, bytes, bytes]]
    alerts: set[str]  # backtest's
    summaries: dict[tuple[str, int], Any]  # backtest's


@pytest.fixture
async def scenario(kafka_bootstrap: str, tmp_path: Path) -> Scenario:
    """The events in both topics of fresh settings, and what backtest gives for them."""
    records = events()
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(value for _, _, _, value in records) + b"\n")
    settings = isolated_settings(kafka_bootstrap, processing={"batch_max_records": 150})
    await produce_topics(settings, records)
    alerts, summaries = expected(settings, path)
    return Scenario(settings, records, alerts, summaries)


async def test_labels_and_predictions_are_taken_in_timestamp_order(scenario: Scenario) -> None:
    worker = Worker(scenario.settings)
    count = len(scenario.records)
    await run_worker_until(worker, lambda: worker.stats.consumed >= count, timeout=120)
    got_alerts, got_summaries = await produced(scenario.settings)
    assert_same(got_summaries, scenario.summaries)
    assert got_alerts == scenario.alerts


def assert_same(got: dict[Any, Any], want: dict[Any, Any]) -> None:
    """Equal final summaries; else the first difference, field by field."""
    assert sorted(got) == sorted(want)
    for key in sorted(want):
        differ = {
            k: (got[key].get(k), want[key].get(k))
            for k in want[key].keys() | got[key].keys()
            if got[key].get(k) != want[key].get(k)
        }
        assert not differ, (key, differ)


async def test_a_worker_killed_mid_way_restarts_to_the_same_outputs(scenario: Scenario) -> None:
    settings, want_summaries = scenario.settings, scenario.summaries
    env = environment(settings)
    env["STREAM_MONITOR_PROCESSING__BATCH_MAX_RECORDS"] = "150"
    env["STREAM_MONITOR_MONITORING__DEFAULT"] = orjson.dumps(
        settings.monitoring.default.model_dump(mode="json")
    ).decode()
    for delay in (3.0, 2.0):  # killed twice, then left to finish
        worker = worker_process(env)
        await asyncio.sleep(delay)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    worker = worker_process(env)
    try:
        deadline = asyncio.get_running_loop().time() + 120
        while asyncio.get_running_loop().time() < deadline:
            got_alerts, got_summaries = await produced(settings)
            if got_summaries.keys() >= want_summaries.keys():
                break
            await asyncio.sleep(1)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    got_alerts, got_summaries = await produced(settings)
    assert_same(got_summaries, want_summaries)
    assert got_alerts == scenario.alerts
