"""``stream-monitor simulate``: a synthetic model server for demos, tests and load.

N models, each with numeric features (normal, log-normal) and categorical ones (skewed
frequencies); a real river model (logistic regression, trained on pre-deployment data, then
frozen) turns features into scores and predictions; the truth follows a hidden concept; labels
are sent to the labels topic after a delay. Scenarios switch on at a given event count:
``covariate`` (mean shift of one feature), ``concept`` (the hidden concept changes), ``missing``
(a missing-value spike), ``label_delay`` (labels arrive much later). Seeded: the same arguments
produce the same stream.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from aiokafka import AIOKafkaProducer
from river import linear_model

from stream_monitor.config.settings import Settings
from stream_monitor.kafka.connection import client_kwargs

__all__ = ["Scenario", "SimulatedModel", "simulate"]

Scenario = Literal["none", "covariate", "concept", "missing", "label_delay"]
T0 = 1_795_800_000_000


@dataclass
class SimulatedModel:
    """One model server: feature generator, frozen river model, hidden concept."""

    model_id: str
    rng: random.Random
    model: Any
    shifted: bool = False
    concept_changed: bool = False
    missing_spike: bool = False

    def features(self) -> dict[str, Any]:
        rng = self.rng
        amount = rng.lognormvariate(3.0, 0.8)
        age = rng.gauss(400, 120) + (150 if self.shifted else 0)  # covariate shift: +1.25 sd
        return {
            "amount": round(amount, 2),
            "account_age_days": None if self.missing_spike and rng.random() < 0.4 else round(age),
            "velocity": round(rng.expovariate(0.5), 3),
            "risk_score": round(rng.betavariate(2, 5), 4),
            "country": rng.choices(("DE", "FR", "US", "GB", "ES"), (5, 3, 3, 2, 1))[0],
            "channel": rng.choices(("web", "app", "pos"), (5, 4, 1))[0],
        }

    def truth(self, features: dict[str, Any]) -> int:
        z = (
            0.02 * features["amount"]
            - 0.004 * (features["account_age_days"] or 400)
            + 1.5 * features["risk_score"]
        )
        if self.concept_changed:
            z = -z + 0.8 * features["velocity"]
        return int(self.rng.random() < 1 / (1 + math.exp(-z)))

    def numeric(self, features: dict[str, Any]) -> dict[str, float]:
        return {
            "amount": features["amount"] / 50,
            "age": (features["account_age_days"] or 400) / 400,
            "risk": features["risk_score"],
            "velocity": features["velocity"],
        }


def make_model(model_id: str, seed: int) -> SimulatedModel:
    """A model server whose river model is trained on 2,000 pre-deployment events."""
    sim = SimulatedModel(model_id, random.Random(seed), linear_model.LogisticRegression())
    for _ in range(2_000):
        features = sim.features()
        sim.model.learn_one(sim.numeric(features), sim.truth(features))
    return sim


async def simulate(
    settings: Settings,
    *,
    models: int = 3,
    events: int = 20_000,
    rate: float = 0.0,
    scenario: Scenario = "covariate",
    drift_at: int = 10_000,
    drift_until: int | None = None,
    label_delay: int = 200,
    seed: int = 1,
    step_ms: int = 100,
) -> int:
    """Produce ``events`` predictions (and their labels); returns the number sent."""
    sims = [make_model(f"model-{i}", seed * 1000 + i) for i in range(models)]
    producer = AIOKafkaProducer(linger_ms=5, **client_kwargs(settings.kafka))
    await producer.start()
    pending: deque[tuple[int, bytes, bytes]] = deque()
    topics = settings.topics
    started = time.monotonic()
    try:
        for i in range(events):
            active = drift_at <= i < (drift_until if drift_until is not None else events + 1)
            sim = sims[i % models]
            sim.shifted = active and scenario == "covariate"
            sim.concept_changed = active and scenario == "concept"
            sim.missing_spike = active and scenario == "missing"
            features = sim.features()
            proba = sim.model.predict_proba_one(sim.numeric(features)).get(True, 0.0)
            timestamp = T0 + i * step_ms
            event_id = f"{sim.model_id}-{i}"
            event = {
                "event_id": event_id,
                "model_id": sim.model_id,
                "model_version": "1.0.0",
                "timestamp": timestamp,
                "features": features,
                "prediction": int(proba > 0.5),
                "score": round(proba, 5),
                "latency_ms": round(sim.rng.expovariate(0.4), 3),
            }
            key = sim.model_id.encode()
            await producer.send(topics.predictions, orjson.dumps(event), key=key)
            delay = label_delay * (20 if active and scenario == "label_delay" else 1)
            label = {
                "event_id": event_id,
                "model_id": sim.model_id,
                "timestamp": timestamp + delay * step_ms,
                "label": sim.truth(features),
            }
            pending.append((i + delay, key, orjson.dumps(label)))
            while pending and pending[0][0] <= i:
                _, label_key, value = pending.popleft()
                await producer.send(topics.labels, value, key=label_key)
            if rate > 0:
                ahead = (i + 1) / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        while pending:
            _, label_key, value = pending.popleft()
            await producer.send(topics.labels, value, key=label_key)
        await producer.flush()
    finally:
        await producer.stop()
    return events
