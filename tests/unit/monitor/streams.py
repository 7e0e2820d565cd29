"""Seeded synthetic prediction streams for monitor tests."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from stream_monitor.events import PredictionEvent

T0 = 1_795_800_000_000


def stream(
    count: int,
    *,
    seed: int = 7,
    model_id: str = "m",
    numeric: int = 3,
    categorical: int = 1,
    step_ms: int = 100,
    shift: Callable[[int], float] = lambda i: 0.0,
    feature_hook: Callable[[int, dict[str, Any]], None] | None = None,
) -> Iterator[PredictionEvent]:
    """``count`` events; ``shift(i)`` is added to x0's mean at event i."""
    rng = random.Random(seed)
    for i in range(count):
        features: dict[str, Any] = {
            f"x{j}": rng.gauss(shift(i) if j == 0 else 0.0, 1.0) for j in range(numeric)
        }
        for j in range(categorical):
            features[f"c{j}"] = rng.choices("abcd", weights=(4, 3, 2, 1))[0]
        if feature_hook is not None:
            feature_hook(i, features)
        yield PredictionEvent(
            event_id=f"e{i}",
            model_id=model_id,
            timestamp=T0 + i * step_ms,
            features=features,
            prediction=int(rng.random() < 0.3),
            score=rng.random(),
            latency_ms=rng.expovariate(0.25),
        )
