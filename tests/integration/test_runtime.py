"""The streaming worker against a real broker: dead letters, alerts end to end, restarts."""

from __future__ import annotations

import json
import random

import orjson

from stream_monitor.devtools.simulator import simulate
from stream_monitor.runtime.worker import Worker

from .runtime_helpers import isolated_settings, produce, read_all, run_worker_until

T0 = 1_795_800_000_000


def prediction(i: int, model: str = "fraud", **changes: object) -> dict[str, object]:
    rng = random.Random(i)
    event: dict[str, object] = {
        "event_id": f"e{i}",
        "model_id": model,
        "timestamp": T0 + i * 100,
        "features": {"amount": rng.gauss(50, 10), "country": rng.choice("ABC")},
        "prediction": 1,
        "score": rng.random(),
    }
    event.update(changes)
    return event


async def test_invalid_events_go_to_dead_letters_and_the_rest_is_processed(
    kafka_bootstrap: str,
) -> None:
    settings = isolated_settings(
        kafka_bootstrap,
        models={"fraud": {"warmup_events": 100, "window": {"kind": "count", "events": 100}}},
        monitoring={"unknown_models": "reject"},
        limits={"max_event_bytes": 2048},
    )
    valid = [(b"fraud", orjson.dumps(prediction(i))) for i in range(200)]
    invalid = [
        (b"fraud", b"{not json"),
        (b"fraud", orjson.dumps(prediction(900, timestamp="yesterday"))),
        (b"fraud", orjson.dumps({"event_id": "x", "model_id": "fraud"})),
        (b"fraud", orjson.dumps(prediction(901, features={"blob": "x" * 1500}))),
        (b"fraud", json.dumps(prediction(902, score=float("nan"))).encode()),
        (b"fraud", b"\xff\xfe\xfd"),
        (b"fraud", b""),
        (b"ghost", orjson.dumps(prediction(903, model="ghost"))),
    ]
    mixed = valid[:100] + invalid + valid[100:]
    worker = Worker(settings)

    async def produced_then_done() -> bool:
        return worker.stats.consumed >= len(mixed)

    async def feed_and_wait() -> None:
        await produce(
            kafka_bootstrap, settings.topics.predictions, mixed, headers=[("trace", b"t-1")]
        )

    import asyncio

    feeder = asyncio.create_task(_after_ready(worker, feed_and_wait))
    await run_worker_until(worker, produced_then_done)
    await feeder
    assert worker.stats.processed == 200
    assert worker.stats.dead_lettered == len(invalid)
    dead = await read_all(kafka_bootstrap, settings.topics.dead_letters)
    assert sorted(r.value for r in dead) == sorted(v for _, v in invalid)
    fields = {}
    for record in dead:
        headers = dict(record.headers)
        assert headers["trace"] == b"t-1"  # original headers kept
        assert headers["source.topic"] == settings.topics.predictions.encode()
        if record.key == b"fraud":  # after the first 100 valid events of that partition
            assert int(headers["source.offset"]) >= 100
        assert headers["error.class"] in (b"EventValidationError", b"UnknownModelError")
        assert headers["service.version"]
        fields[record.value] = headers["error.field"].decode()
    assert fields[b""] == "<event>"
    assert fields[orjson.dumps(prediction(900, timestamp="yesterday"))] == "timestamp"
    assert fields[orjson.dumps(prediction(903, model="ghost"))] == "model_id"
    assert next(r.key for r in dead if r.value == b"\xff\xfe\xfd") == b"fraud"
    summaries = [
        orjson.loads(r.value) for r in await read_all(kafka_bootstrap, settings.topics.metrics)
    ]
    assert sum(s["sample_size"] for s in summaries) == 200


async def _after_ready(worker: Worker, action: object) -> None:
    import asyncio

    await asyncio.wait_for(worker.ready.wait(), 60)
    await action()  # type: ignore[operator]


async def test_simulated_shift_fires_and_resolves_on_the_alerts_topic(
    kafka_bootstrap: str,
) -> None:
    settings = isolated_settings(kafka_bootstrap)
    worker = Worker(settings)
    import asyncio

    sim = asyncio.create_task(
        _after_ready(
            worker,
            lambda: simulate(
                settings,
                models=2,
                events=9_000,
                scenario="covariate",
                drift_at=3_000,
                drift_until=5_000,
                label_delay=50,
                seed=3,
            ),
        )
    )
    await run_worker_until(
        worker, lambda: sim.done() and worker.stats.consumed >= 18_000, timeout=120
    )
    alerts = [
        orjson.loads(r.value) for r in await read_all(kafka_bootstrap, settings.topics.alerts)
    ]
    drift = [a for a in alerts if a["rule"] == "drift.psi" and a["feature"] == "account_age_days"]
    assert {a["model_id"] for a in drift if a["status"] == "firing"} == {"model-0", "model-1"}
    assert {a["model_id"] for a in drift if a["status"] == "resolved"} == {"model-0", "model-1"}
    for alert in drift:
        assert alert["runbook_url"] is None
        assert alert["window_end"] >= T0 + 3_000 * 100 - 300 * 2 * 100
    records = await read_all(kafka_bootstrap, settings.topics.alerts)
    assert all(r.key == orjson.loads(r.value)["dedup_key"].encode() for r in records)
    assert all(dict(r.headers)["alert_id"] for r in records)


async def test_restart_resumes_from_the_checkpoint_without_double_counting(
    kafka_bootstrap: str,
) -> None:
    settings = isolated_settings(kafka_bootstrap)
    events = [
        (
            b"fraud",
            orjson.dumps(
                prediction(
                    i, features={"amount": random.Random(i).gauss(50 if i < 1500 else 70, 10)}
                )
            ),
        )
        for i in range(3000)
    ]
    # Uninterrupted reference run on its own topics.
    reference = isolated_settings(kafka_bootstrap)
    ref_worker = Worker(reference)
    import asyncio

    feeder = asyncio.create_task(
        _after_ready(
            ref_worker, lambda: produce(kafka_bootstrap, reference.topics.predictions, events)
        )
    )
    await run_worker_until(ref_worker, lambda: ref_worker.stats.consumed >= 3000)
    await feeder
    # The same events through a worker that stops half way and a second one that resumes.
    first = Worker(settings)
    feeder = asyncio.create_task(
        _after_ready(
            first, lambda: produce(kafka_bootstrap, settings.topics.predictions, events[:1400])
        )
    )
    await run_worker_until(first, lambda: first.stats.consumed >= 1400)
    await feeder
    await produce(kafka_bootstrap, settings.topics.predictions, events[1400:])
    second = Worker(settings)
    await run_worker_until(second, lambda: second.stats.consumed >= 1600)
    assert second.stats.restored >= 1
    assert second.stats.consumed == 1600  # resumed right after the checkpointed offsets

    def summaries(records: list[object]) -> list[bytes]:
        return sorted(r.value for r in records)  # type: ignore[attr-defined]

    got = summaries(await read_all(kafka_bootstrap, settings.topics.metrics))
    expected = summaries(await read_all(kafka_bootstrap, reference.topics.metrics))
    assert got == expected
    alerts = [
        orjson.loads(r.value)["alert_id"]
        for r in await read_all(kafka_bootstrap, settings.topics.alerts)
    ]
    expected_alerts = [
        orjson.loads(r.value)["alert_id"]
        for r in await read_all(kafka_bootstrap, reference.topics.alerts)
    ]
    assert expected_alerts
    assert sorted(set(alerts)) == sorted(set(expected_alerts))


async def test_missing_topics_without_auto_create_is_a_clear_error(kafka_bootstrap: str) -> None:
    import pytest

    from stream_monitor.runtime.topics import TopicError, ensure_topics

    settings = isolated_settings(kafka_bootstrap, topics={"auto_create": False})
    with pytest.raises(
        TopicError,
        match="do not exist on .*; create them or set "
        r"topics\.auto_create: true",
    ):
        await ensure_topics(settings)
