"""What the Python side keeps of a reference profile once its bins are in the native core: the
summary the rules read, and each feature's reference as the core takes it."""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar

from stream_monitor.config.models import DriftSpec, FeatureType
from stream_monitor.monitor.compare import PREDICTION  # the prediction signal's key
from stream_monitor.monitor.multivariate import JointReference
from stream_monitor.monitor.reference import (
    CategoricalReference,
    FeatureReference,
    NumericReference,
    ReferenceProfile,
)

__all__ = [
    "JOINT",
    "PREDICTION",
    "FeatureSummary",
    "ReferenceSummary",
    "Watched",
    "describe",
    "shared",
    "watched_signals",
]

JOINT = "__joint__"  # detections key (and alert feature) of the reconstruction error


class Watched(NamedTuple):
    """Which signals of a model its change detectors watch, under a reference."""

    detectors: dict[str, tuple[str, ...]]  # signal name -> detector names, in the core's order
    slots: list[int | None]  # the watched features' slots (None: the prediction signal)
    joint: JointReference | None  # the multivariate reference, when it applies


def watched_signals(
    reference: ReferenceProfile, types: dict[str, FeatureType], drift: DriftSpec
) -> Watched:
    """The detectors of each numeric signal (each value's rank in its reference), and the
    joint reference's reconstruction error last when multivariate drift applies."""
    detectors: dict[str, tuple[str, ...]] = {}
    signals: list[tuple[str, int | None, Any]] = [
        (name, slot, reference.features.get(name)) for slot, name in enumerate(types)
    ]
    signals.append((PREDICTION, None, reference.prediction))
    slots: list[int | None] = []
    for name, slot, ref in signals:
        if isinstance(ref, NumericReference) and drift.detectors:
            detectors[name] = drift.detectors  # one tuple shared by every signal
            slots.append(slot)
    joint = reference.joint if drift.multivariate.enabled else None
    if joint is not None and not all(types.get(n) == "numeric" for n in joint.features):
        joint = None  # made for other features (a profile file of another schema)
    if joint is not None and drift.detectors:
        detectors[JOINT] = drift.detectors  # each event's reconstruction error, last
    return Watched(shared(detectors), slots, joint)


class FeatureSummary(NamedTuple):
    """What the rules read of a feature's reference."""

    kind: str
    missing_rate: float
    sample_size: int


class ReferenceSummary(NamedTuple):
    """What the rules read of a reference profile (the bins are in the native core)."""

    reference_id: str
    features: dict[str, FeatureSummary]

    @classmethod
    def of(cls, profile: ReferenceProfile) -> ReferenceSummary:
        # Features alike (same kind, missing rate and sample size) share one summary object.
        shared: dict[tuple[Any, ...], FeatureSummary] = {}
        features = {}
        for name, ref in profile.features.items():
            summary = FeatureSummary(ref.kind, ref.missing_rate, ref.sample_size)
            key = (ref.kind, type(ref.missing_rate), ref.missing_rate, ref.sample_size)
            features[name] = shared.setdefault(key, summary)
        return cls(profile.reference_id, features)


_V = TypeVar("_V")
_SHARED: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
_SHARED_MAX = 1_000


def shared(mapping: dict[str, _V]) -> dict[str, _V]:
    """One dict for every model whose feature kinds (or detectors) are alike: models of the
    same feature set hold one copy, not one each. The dicts are never changed once made."""
    key = tuple(mapping.items())
    found = _SHARED.get(key)
    if found is not None:
        return found
    if len(_SHARED) < _SHARED_MAX:
        _SHARED[key] = mapping
    return mapping


def describe(reference: FeatureReference | None, kind: str) -> tuple[Any, ...] | None:
    """A feature reference as the native core takes it (None when of another kind)."""
    if isinstance(reference, NumericReference) and kind == "numeric":
        return (
            "numeric",
            reference.edges,
            reference.counts,
            reference.coarse_of,
            reference.minimum,
            reference.maximum,
            reference.std,
        )
    if isinstance(reference, CategoricalReference) and kind == "categorical":
        return ("categorical", reference.index, reference.known, reference.counts)
    return None
