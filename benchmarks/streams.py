"""The detection benchmark's synthetic streams: rows of (features, score, prediction, label)
with a change at a known event, seeded. Real shapes are in ``benchmarks.shapes``."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from typing import Any

from river import datasets, naive_bayes

__all__ = [
    "FEATURES",
    "VERSION",
    "Row",
    "champion_rows",
    "concept_rows",
    "correlation_rows",
    "friedman_rows",
    "gaussian_rows",
    "segment_rows",
    "silent_accuracy_rows",
    "slight_fall_rows",
]

FEATURES = 20

Row = tuple[dict[str, Any], float | None, Any, Any]  # features, score, prediction, label


def gaussian_rows(
    seed: int,
    count: int,
    *,
    mean: Callable[[int, int], float] = lambda i, j: 0.0,
    sd: Callable[[int, int], float] = lambda i, j: 1.0,
    categorical: Callable[[int], tuple[float, ...]] = lambda i: (4, 3, 2, 1),
    missing: Callable[[int, int], float] = lambda i, j: 0.0,
    score_shift: Callable[[int], float] = lambda i: 0.0,
) -> Iterator[Row]:
    rng = random.Random(seed)
    gauss, uniform = rng.gauss, rng.random
    for i in range(count):
        features: dict[str, Any] = {}
        for j in range(FEATURES):
            if missing(i, j) and uniform() < missing(i, j):
                features[f"x{j}"] = None
            else:
                features[f"x{j}"] = gauss(mean(i, j), sd(i, j))
        features["c0"] = rng.choices("abcd", weights=categorical(i))[0]
        features["c1"] = rng.choices("xyz")[0]
        score = min(1.0, max(0.0, uniform() * 0.8 + score_shift(i)))
        # Labels on every event, independent of the score: a stationary error stream, so the
        # performance rules and the error-stream detector are part of the false-alarm count.
        yield features, score, int(score > 0.5), int(uniform() < 0.3)


def segment_rows(seed: int, count: int, change: int) -> Iterator[Row]:
    """x0 shifts by 1 sd only in the segment c0 = "d", 7% of the traffic (the global marginal
    moves by about 0.07 sd)."""
    for i, (features, score, prediction, label) in enumerate(
        gaussian_rows(seed, count, categorical=lambda i: (40, 30, 23, 7))
    ):
        if i >= change and features["c0"] == "d":
            features["x0"] += 1.0
        yield features, score, prediction, label


def correlation_rows(seed: int, count: int, change: int) -> Iterator[Row]:
    """x1 becomes 0.9 x0 + noise after the change; both marginals stay N(0, 1)."""
    spread = math.sqrt(1 - 0.9**2)
    for i, (features, score, prediction, label) in enumerate(gaussian_rows(seed, count)):
        if i >= change:
            features["x1"] = 0.9 * features["x0"] + spread * (features["x1"] or 0.0)
        yield features, score, prediction, label


def silent_accuracy_rows(seed: int, count: int, change: int) -> Iterator[Row]:
    """A calibrated classifier (its score is the chance of class 1): after the change the labels
    stop coming and the inputs move to where it is less sure (x0 + 1 sd, scores near 0.5), so
    accuracy falls from about 0.8 to about 0.6 with no label to show it."""
    rng = random.Random(seed + 7)
    for i, (features, _, _, _) in enumerate(gaussian_rows(seed, count)):
        after = i >= change
        if after:
            features["x0"] += 1.0
        score = (
            rng.uniform(0.3, 0.7)
            if after
            else rng.choice((rng.uniform(0, 0.4), rng.uniform(0.6, 1)))
        )
        label = int(rng.random() < score)
        yield features, score, int(score > 0.5), None if after else label


def slight_fall_rows(seed: int, count: int, change: int) -> Iterator[Row]:
    """The issue's scenario: a calibrated classifier right about 72% of the time; at the change
    its labels stop and its scores narrow towards 0.5 (uniform on 0.06..0.94, then on
    0.12..0.88), so accuracy falls to about 0.69, a drop of 0.03: about 7 standard errors of a
    window's estimate, below the default warning_drop of 0.05."""
    rng = random.Random(seed + 13)
    for i, (features, _, _, _) in enumerate(gaussian_rows(seed, count)):
        after = i >= change
        score = rng.uniform(0.12, 0.88) if after else rng.uniform(0.06, 0.94)
        label = int(rng.random() < score)
        yield features, score, int(score > 0.5), None if after else label


VERSION = "__version__"  # a row's model version, carried in its features (taken out on send)


def champion_rows(seed: int, count: int, change: int) -> Iterator[Row]:
    """A champion (v1) serves alone, then from event 1,000 shares the traffic half and half
    with a challenger (v2) that scores the same inputs; both are right 80% of the time until
    the change, after which the challenger is right only 65% of the time (labels inline).
    Neither the inputs nor the scores move."""
    rng = random.Random(seed + 11)
    for i, (features, score, prediction, _) in enumerate(gaussian_rows(seed, count)):
        version = "v2" if i >= 1_000 and rng.random() < 0.5 else "v1"
        features[VERSION] = version
        right = 0.65 if version == "v2" and i >= change else 0.8
        yield features, score, prediction, prediction if rng.random() < right else 1 - prediction


def concept_rows(seed: int, count: int, change: int) -> Iterator[Row]:
    """Agrawal concept drift (function 0 -> 2); a GaussianNB trained on 2,000 pre-drift events
    before deployment, then frozen, makes the predictions, as a deployed model would."""
    stream = datasets.synth.ConceptDriftStream(
        stream=datasets.synth.Agrawal(classification_function=0, seed=seed),
        drift_stream=datasets.synth.Agrawal(classification_function=2, seed=seed),
        position=change,
        width=100,
        seed=seed,
    )
    model = naive_bayes.GaussianNB()
    for x, y in datasets.synth.Agrawal(classification_function=0, seed=seed + 1000).take(2_000):
        model.learn_one(x, y)  # trained before deployment, then frozen
    for x, y in stream.take(count):
        proba = model.predict_proba_one(x).get(1, 0.0)
        yield dict(x), proba, int(proba > 0.5), y  # the label comes with the event


def friedman_rows(seed: int, count: int, change: int) -> Iterator[Row]:
    """FriedmanDrift (global recurring abrupt); predictions of a model fitted before the drift
    are simulated by the pre-drift Friedman function."""
    stream = datasets.synth.FriedmanDrift(drift_type="gra", position=(change, 10**9), seed=seed)
    for x, y in stream.take(count):
        features = {f"x{k}": v for k, v in x.items()}
        prediction = (
            10 * math.sin(math.pi * x[0] * x[1]) + 20 * (x[2] - 0.5) ** 2 + 10 * x[3] + 5 * x[4]
        )
        yield features, None, prediction, y
