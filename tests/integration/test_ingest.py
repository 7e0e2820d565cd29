"""`stream-monitor ingest` on the real broker: KServe's payload logger CloudEvents (binary and
structured mode, V1 and V2 bodies) in, prediction events out, answered only once acknowledged."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from stream_monitor.config import Settings
from stream_monitor.events import EventCodec
from stream_monitor.integrations.ingest import Ingest, serve_ingest
from stream_monitor.runtime.topics import ensure_topics

from .runtime_helpers import isolated_settings, read_all
from .test_integrations_doc import example

CODEC = EventCodec()
REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"


@pytest.fixture
async def ingest(kafka_bootstrap: str) -> AsyncIterator[tuple[Settings, Ingest, str]]:
    settings = isolated_settings(kafka_bootstrap)
    await ensure_topics(settings)
    service = Ingest(settings, features=["amount", "age"])
    runner, port = await serve_ingest(service, "127.0.0.1", 0)
    try:
        yield settings, service, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await service.stop()


def binary(event_id: str, kind: str, body: object, model: str = "fraud") -> dict[str, object]:
    """What KServe's logger sends in binary mode."""
    return {
        "headers": {
            "ce-specversion": "1.0",
            "ce-id": event_id,
            "ce-type": kind,
            "ce-source": f"http://localhost:9081/v1/models/{model}",
            "ce-time": "2026-11-27T10:00:00Z",
            "ce-inferenceservicename": model,
            "ce-component": "predictor",
            "content-type": "application/json",
        },
        "content": orjson.dumps(body),
    }


async def test_pairs_become_prediction_events_once_acknowledged(
    ingest: tuple[Settings, Ingest, str],
) -> None:
    settings, _, url = ingest
    async with httpx.AsyncClient(base_url=url) as client:
        # V1 in binary mode, the response first: the request completes the pair.
        first = await client.post(
            "/", **binary("r1", RESPONSE, {"predictions": [[0.2, 0.8], [0.9, 0.1]]})
        )
        assert first.status_code == 202
        done = await client.post(
            "/", **binary("r1", REQUEST, {"instances": [[120.0, 31], [15.5, 40]]})
        )
        assert done.status_code == 200, done.text
        assert done.json() == {"status": "produced", "events": 2}
        # V2 in structured mode, one [N, F] tensor, the response as data_base64.
        request = {
            "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [[7.0, 22]]}]
        }
        response = {"outputs": [{"name": "p", "shape": [1], "datatype": "INT64", "data": [1]}]}
        envelope = {
            "specversion": "1.0",
            "id": "r2",
            "type": REQUEST,
            "source": "s",
            "inferenceservicename": "churn",
            "data": request,
        }
        structured = {"content-type": "application/cloudevents+json"}
        assert (
            await client.post("/", content=orjson.dumps(envelope), headers=structured)
        ).status_code == 202
        envelope |= {
            "type": RESPONSE,
            "data_base64": base64.b64encode(orjson.dumps(response)).decode(),
        }
        del envelope["data"]
        assert (
            await client.post("/", content=orjson.dumps(envelope), headers=structured)
        ).status_code == 200
        # What cannot be read is refused with the reason.
        bad = await client.post("/", **binary("r3", REQUEST, {"rows": []}))
        assert bad.status_code == 400
        assert "neither instances (V1) nor inputs (V2)" in bad.json()["error"]
        stats = (await client.get("/stats")).json()
    assert stats == {"matched": 2, "produced": 3, "refused": 1, "pending": 0}
    records = await read_all(settings.kafka.bootstrap_servers, settings.topics.predictions)
    events = {e.event_id: e for e in (CODEC.decode_prediction(r.value) for r in records)}
    assert set(events) == {"r1-0", "r1-1", "r2"}
    assert events["r1-0"].features == {"amount": 120.0, "age": 31}
    assert (events["r1-0"].prediction, events["r1-0"].score) == (1, 0.8)
    assert (events["r1-1"].prediction, events["r1-1"].score) == (0, 0.1)
    assert events["r1-0"].timestamp == 1_795_773_600_000  # ce-time
    assert events["r2"].model_id == "churn"
    assert events["r2"].features == {"amount": 7.0, "age": 22}  # --features named the columns
    assert events["r2"].prediction == 1
    assert {r.key for r in records} == {b"fraud", b"churn"}


async def test_the_documented_kserve_example_runs(ingest: tuple[Settings, Ingest, str]) -> None:
    settings, _, url = ingest
    code = example("kserve").replace("http://localhost:8060/", f"{url}/")
    await asyncio.to_thread(exec, compile(code, "docs/integrations.md", "exec"), {})
    [record] = await read_all(settings.kafka.bootstrap_servers, settings.topics.predictions)
    produced = CODEC.decode_prediction(record.value)
    assert (produced.model_id, produced.prediction, produced.score) == ("fraud", 1, 0.8)
