"""The reference workload: 20 models, 10 numeric + 2 categorical features, binary
classification with a score and a label on every event, about 400-byte JSON events."""

from __future__ import annotations

import random

import orjson

MODELS = 20
T0 = 1_795_800_000_000


def reference_events(
    count: int,
    seed: int = 1,
    models: int = MODELS,
    *,
    start: int = 0,
    shift: float = 0.0,
    timestamp: int | None = None,
) -> list[bytes]:
    """``count`` encoded prediction events, round-robin over ``models`` models.

    ``start`` numbers the events from there (ids stay unique across calls), ``shift`` adds that
    many standard deviations to every numeric feature (drift), ``timestamp`` stamps every event
    with that time instead of the synthetic clock.
    """
    rng = random.Random(seed * 1_000_003 + start)  # noqa: S311 - synthetic data
    out = []
    for i in range(start, start + count):
        features: dict[str, object] = {
            f"num_{j}": round(rng.gauss(j + shift * (1 + j / 10), 1 + j / 10), 4) for j in range(10)
        }
        features["country"] = rng.choice(("DE", "FR", "US", "GB", "ES", "IT"))
        features["channel"] = rng.choice(("web", "app", "pos"))
        score = round(rng.random(), 4)
        out.append(
            orjson.dumps(
                {
                    "event_id": f"evt-{i:012d}",
                    "model_id": f"model-{i % models:02d}",
                    "model_version": "2026.11.1",
                    "timestamp": T0 + i if timestamp is None else timestamp,
                    "features": features,
                    "prediction": int(score > 0.5),
                    "score": score,
                    "label": int(rng.random() < 0.4),
                    "latency_ms": round(rng.expovariate(0.3), 3),
                    "metadata": {"region": "eu-west-1", "host": f"srv-{i % 32:02d}"},
                }
            )
        )
    return out
