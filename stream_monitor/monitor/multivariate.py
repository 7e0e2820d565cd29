"""Multivariate drift: a change in how the numeric features vary together.

Each feature's own drift test cannot see two features becoming correlated while each keeps its
distribution. Every value is first taken as its normal score in its feature's reference (the
normal quantile of its mid-rank: a Gaussian copula), so what follows depends on how the
features vary together and not on their tails, atoms or modes. The reference fits a PCA to
those scores, standardised, and keeps what a window is compared with; the native core counts,
per window, the sums of the standardised scores and of every product of two (``joint``
moments, exactly mergeable). At close the core tests them, from those sums alone, in windows
of at least ``MIN_EVENTS`` complete events:

- the **reconstruction error**: the mean squared distance of the window's events (centred on
  the window's means) from the subspace of the components that explain ``variance_share`` of
  the reference's variance; compared with its mean over a held-out half of the reference (the
  half the PCA was not fitted on: an in-sample error is biased low), in units of its standard
  error;
- every pair's **correlation**, against the reference's (Fisher's z, widened by the spread the
  pair's correlation has on the reference: a dependence that is not linear spreads it wider).

The window's p-value is the smallest of these tests' p-values times their number
(Bonferroni), and it is one more signal in the drift family of the window. Centring on the
window's means keeps a shift of one feature's mean, which the feature's own tests see, out of
this rule.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from stream_monitor._native import fit_joint as native_fit

__all__ = ["JointCheck", "JointReference", "fit_joint"]

MIN_FEATURES = 3
MIN_EVENTS = 500  # a window's complete events below which it is not tested (native MIN_EVENTS)
TRANSFORM = "normal_scores"  # what the joint moments are taken on (older profiles: raw values)


@dataclass(frozen=True, eq=False)
class JointReference:
    """What a window's joint moments are compared with (compact: arrays of doubles)."""

    features: tuple[str, ...]
    mean: array[float]
    sd: array[float]
    kept: int  # components that explain the variance share
    discarded: array[float]  # the other components, row after row (unit vectors)
    error_mean: float  # per-event reconstruction error over the held-out half
    error_sd: float
    held_out: int  # events in the held-out half
    correlations: array[float]  # every pair i < j, row by row
    sample_size: int  # complete events in the reference
    pair_spread: array[float]  # each pair's widening of Fisher's variance, as correlations
    error_edges: array[float]  # the joint detectors' error: percentile edges on the held-out half
    error_counts: array[float]  # and its errors per bin (one more than edges)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JointReference) and self.to_dict(True) == other.to_dict(True)

    def __hash__(self) -> int:
        return hash((self.features, self.sample_size, self.error_mean))

    def native(self, slots: list[int]) -> tuple[Any, ...]:
        """What the native core's ``set_joint`` takes, for the features at ``slots``."""
        band = (
            self.kept,
            list(self.discarded),
            self.error_mean,
            self.error_sd,
            self.held_out,
            list(self.correlations),
            self.sample_size,
            list(self.pair_spread),
            list(self.error_edges),
            list(self.error_counts),
        )
        return slots, list(self.mean), list(self.sd), band

    def to_dict(self, packed: bool = False) -> dict[str, Any]:
        """A profile file's ``joint`` section. ``packed``: the arrays as hex of their bytes, for
        the reference's id (computed at every warm-up end: a Python float per value, made by the
        thousand at a fleet's warm-up end, pinned the memory of what outlived them)."""

        def values(numbers: array[float]) -> Any:
            return numbers.tobytes().hex() if packed else numbers.tolist()

        return {
            "transform": TRANSFORM,
            "features": list(self.features),
            "mean": values(self.mean),
            "sd": values(self.sd),
            "kept": self.kept,
            "discarded": values(self.discarded),
            "error_mean": self.error_mean,
            "error_sd": self.error_sd,
            "held_out": self.held_out,
            "correlations": values(self.correlations),
            "sample_size": self.sample_size,
            "pair_spread": values(self.pair_spread),
            "error_edges": values(self.error_edges),
            "error_counts": values(self.error_counts),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JointReference:
        """Read :meth:`to_dict`'s output; ValueError naming the field that does not fit."""
        if data.get("transform") != TRANSFORM:  # made before the moments took normal scores
            raise ValueError("joint.transform")
        features = tuple(str(name) for name in data["features"])
        f = len(features)
        reference = cls(
            features=features,
            mean=array("d", map(float, data["mean"])),
            sd=array("d", map(float, data["sd"])),
            kept=int(data["kept"]),
            discarded=array("d", map(float, data["discarded"])),
            error_mean=float(data["error_mean"]),
            error_sd=float(data["error_sd"]),
            held_out=int(data["held_out"]),
            correlations=array("d", map(float, data["correlations"])),
            sample_size=int(data["sample_size"]),
            pair_spread=array("d", map(float, data["pair_spread"])),
            error_edges=array("d", map(float, data["error_edges"])),
            error_counts=array("d", map(float, data["error_counts"])),
        )
        sizes = {
            "features": f >= MIN_FEATURES,
            "mean": len(reference.mean) == f,
            "sd": len(reference.sd) == f and all(s > 0 for s in reference.sd),
            "kept": 0 < reference.kept < f,
            "discarded": len(reference.discarded) == (f - reference.kept) * f,
            "error_sd": reference.error_sd > 0,
            "held_out": reference.held_out > 3,
            "correlations": len(reference.correlations) == f * (f - 1) // 2,
            "pair_spread": len(reference.pair_spread) == f * (f - 1) // 2
            and all(v > 0 for v in reference.pair_spread),
            "error_counts": len(reference.error_counts) == len(reference.error_edges) + 1,
        }
        for name, ok in sizes.items():
            if not ok:
                raise ValueError(f"joint.{name}")
        return reference


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _column(values: Sequence[Any]) -> Sequence[float]:
    """A column as floats (NaN where not a number); the warm-up's are arrays of doubles."""
    if isinstance(values, array) and values.typecode == "d":
        return values
    return [_number(v) for v in values]


def fit_joint(
    columns: Mapping[str, Sequence[Any]],
    names: Sequence[str],
    variance_share: float,
    bins: Mapping[str, tuple[Sequence[float], Sequence[int]]],
) -> JointReference | None:
    """The joint reference of the numeric features ``names`` from their value columns, each
    taken as its normal scores on the feature's reference ``bins`` (percentile edges and
    counts); fitted by the native core: PCA by Jacobi rotations, the band on the held-out half.

    None when fewer than 3 features vary or fewer than 100 events have all of them: there is
    nothing joint to watch.
    """
    if len(names) < MIN_FEATURES:
        return None
    references = [(list(bins[name][0]), [float(c) for c in bins[name][1]]) for name in names]
    fitted = native_fit([_column(columns[name]) for name in names], variance_share, references)
    if fitted is None:
        return None
    used, mean, sd, kept, discarded, error_mean, error_sd, held, correlations, size = fitted[:10]
    pair_spread, error_edges, error_counts = fitted[10:]
    return JointReference(
        features=tuple(names[i] for i in used),
        mean=array("d", mean),
        sd=array("d", sd),
        kept=kept,
        discarded=array("d", discarded),
        error_mean=error_mean,
        error_sd=error_sd,
        held_out=held,
        correlations=array("d", correlations),
        sample_size=size,
        pair_spread=array("d", pair_spread),
        error_edges=array("d", error_edges),
        error_counts=array("d", error_counts),
    )


class JointCheck(NamedTuple):
    """A window's multivariate test (computed by the native core at close): the largest |z|
    of its tests, their combined p-value (Bonferroni) and the evidence for the alert."""

    value: float
    p_value: float
    evidence: dict[str, Any]

    @classmethod
    def of(cls, features: Sequence[str], reference_error: float, tested: Any) -> JointCheck:
        """From the core's ``(events, value, p_value, error, error_z, pairs)``."""
        _, value, p_value, error, error_z, pairs = tested
        return cls(
            value,
            p_value,
            {
                "reconstruction_error": error,
                "reference_error": reference_error,
                "error_z": error_z,
                "pairs": [
                    {
                        "features": [features[i], features[j]],
                        "correlation": r,
                        "reference_correlation": r0,
                        "z": z,
                    }
                    for i, j, r, r0, z in pairs
                ],
            },
        )

    def summary(self) -> dict[str, float]:
        """What a window summary carries."""
        pairs = self.evidence["pairs"]
        return {
            "joint_z": self.value,
            "p_value": self.p_value,
            "reconstruction_error": self.evidence["reconstruction_error"],
            "error_z": self.evidence["error_z"],
            "max_pair_z": abs(pairs[0]["z"]) if pairs else 0.0,
        }
