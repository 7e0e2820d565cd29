"""Streams with the shapes production features have, for the detection benchmark.

Gaussian features hide what breaks a false-alarm guarantee: heavy tails, atoms, counts, modes.
``shaped_rows`` draws, per event, one feature of each shape below (and a score and label that
depend on them, so performance and estimation see a stationary model); ``shuttle_rows`` draws
rows at random from a real data set river ships (NASA's Statlog Shuttle: integer readings with
large atoms and long tails). Both are stationary until ``change`` and, when asked, shifted after.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from functools import cache
from itertools import islice
from typing import Any

Row = tuple[dict[str, Any], float | None, Any, Any]  # features, score, prediction, label
Shift = Callable[[random.Random, dict[str, Any]], None]  # changes one event's features in place

SHAPES = (
    "lognormal",  # amounts: exp(N(3, 1))
    "pareto",  # session lengths: Pareto, alpha 1.5 (infinite variance)
    "spend",  # zero-inflated: 70% exactly 0, else log-normal
    "count",  # Poisson(0.7) counts: half of them 0
    "code",  # an int-coded category, 8 codes with unequal weights
    "bimodal",  # N(-2, 0.5) or N(3, 1), 40:60
    "constant",  # 1.0 95% of the time, else N(5, 2)
    "pair_x",  # a non-linearly dependent pair: pair_y = pair_x^2 + noise
    "pair_y",
)
CHANNELS = ("web", "app", "store", "partner")  # c0, the categorical feature segments split by
CODE_WEIGHTS = (30, 20, 15, 10, 10, 8, 5, 2)


def poisson(rng: random.Random, rate: float) -> int:
    """Knuth's method (rates here are small)."""
    limit, k, product = math.exp(-rate), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def shaped_features(rng: random.Random, *, bimodal_weight: float = 0.4) -> dict[str, Any]:
    gauss = rng.gauss
    x = rng.uniform(-2.0, 2.0)
    return {
        "lognormal": math.exp(gauss(3.0, 1.0)),
        "pareto": rng.paretovariate(1.5),
        "spend": 0.0 if rng.random() < 0.7 else math.exp(gauss(2.0, 1.2)),
        "count": poisson(rng, 0.7),
        "code": rng.choices(range(8), weights=CODE_WEIGHTS)[0],
        "bimodal": gauss(-2.0, 0.5) if rng.random() < bimodal_weight else gauss(3.0, 1.0),
        "constant": 1.0 if rng.random() < 0.95 else gauss(5.0, 2.0),
        "pair_x": x,
        "pair_y": x * x + gauss(0.0, 0.3),
        "c0": rng.choices(CHANNELS, weights=(50, 30, 15, 5))[0],
    }


def labelled(rng: random.Random, features: dict[str, Any]) -> Row:
    """A calibrated classifier on the features: its score is the chance of class 1."""
    logit = 0.8 * math.log1p(features["spend"]) - 0.5 * features["count"] - 1.0
    logit += 0.3 * (features["bimodal"] > 0) + 0.4 * (features["code"] < 2)
    score = 1.0 / (1.0 + math.exp(-logit))
    return features, score, int(score > 0.5), int(rng.random() < score)


def shaped_rows(
    seed: int, count: int, change: int | None = None, shift: Shift | None = None
) -> Iterator[Row]:
    rng = random.Random(seed)
    for i in range(count):
        features = shaped_features(rng)
        if shift is not None and change is not None and i >= change:
            shift(rng, features)
        yield labelled(rng, features)


def mixture_shift(rng: random.Random, features: dict[str, Any]) -> None:
    """The bimodal feature's weights 40:60 -> 60:40."""
    features["bimodal"] = rng.gauss(-2.0, 0.5) if rng.random() < 0.6 else rng.gauss(3.0, 1.0)


def fewer_zeros(rng: random.Random, features: dict[str, Any]) -> None:
    """Zero-inflated spend: 70% -> 55% exactly 0 (the same amounts otherwise)."""
    if features["spend"] == 0.0 and rng.random() < 0.15 / 0.7:
        features["spend"] = math.exp(rng.gauss(2.0, 1.2))


def recoded(rng: random.Random, features: dict[str, Any]) -> None:
    """The int-coded category's weights reversed."""
    features["code"] = rng.choices(range(8), weights=CODE_WEIGHTS[::-1])[0]


def less_constant(rng: random.Random, features: dict[str, Any]) -> None:
    """The near-constant feature: 1.0 95% -> 80% of the time (a PSI of about 0.23; 88% would
    be 0.067, under the 0.1 warning floor)."""
    if rng.random() < 0.15 / 0.95:
        features["constant"] = rng.gauss(5.0, 2.0)


def decoupled(rng: random.Random, features: dict[str, Any]) -> None:
    """The pair stops depending on each other: pair_y from an independent x (same marginals).
    Their correlation was about 0 before and after: what second moments of normal scores
    cannot see (a dependence that is not monotone)."""
    x = rng.uniform(-2.0, 2.0)
    features["pair_y"] = x * x + rng.gauss(0.0, 0.3)


def moved_atom(rng: random.Random, features: dict[str, Any]) -> None:
    """The near-constant feature's constant 1.0 becomes 1.5 (a default value changed)."""
    if features["constant"] == 1.0:
        features["constant"] = 1.5


def mixed_in(share: float, shift: Shift) -> Shift:
    """``shift`` on a ``share`` of the events: a component of other values mixed in."""

    def mixed(rng: random.Random, features: dict[str, Any]) -> None:
        if rng.random() < share:
            shift(rng, features)

    return mixed


def scale_shift(feature: str, factor: float) -> Shift:
    def shift(rng: random.Random, features: dict[str, Any]) -> None:
        features[feature] *= factor

    return shift


def add_shift(feature: str, amount: float) -> Shift:
    def shift(rng: random.Random, features: dict[str, Any]) -> None:
        features[feature] += amount

    return shift


@cache
def shuttle() -> tuple[tuple[dict[str, Any], int], ...]:
    """The Statlog Shuttle data set as river ships it (49,097 rows, 9 integer features)."""
    from river import datasets  # noqa: PLC0415 (only the real-data scenarios need it)

    return tuple((dict(x), int(y)) for x, y in islice(datasets.Shuttle(), None))


def shuttle_rows(
    seed: int,
    count: int,
    change: int | None = None,
    shift: Shift | None = None,
    *,
    rare_class_weight: float | None = None,
) -> Iterator[Row]:
    """Rows drawn at random (with replacement) from Shuttle: stationary by construction. The
    label is the data set's class (1: the rare classes, 0: "Rad Flow"), the score a fixed
    function of the readings. ``rare_class_weight``: after ``change``, the rows of the rare
    classes are drawn this many times as often (a change in the mixture)."""
    rows = shuttle()
    common = [r for r in rows if r[1] == 0]
    rare = [r for r in rows if r[1] != 0]
    rare_share = len(rare) / len(rows)
    rng = random.Random(seed)
    for i in range(count):
        after = change is not None and i >= change
        share = rare_share
        if after and rare_class_weight is not None:
            share = rare_share * rare_class_weight / (1 + rare_share * (rare_class_weight - 1))
        x, _ = rng.choice(rare if rng.random() < share else common)
        features = {k: float(v) for k, v in x.items()}
        if after and shift is not None:
            shift(rng, features)
        logit = 0.08 * (features["f1"] - 45) - 0.05 * abs(features["f5"] - 30) + 0.5
        score = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, logit))))
        yield features, score, int(score > 0.5), int(rng.random() < score)
