"""Multivariate drift: a change in how the numeric features vary together.

Each feature's own drift test cannot see two features becoming correlated while each keeps its
distribution. The reference fits a PCA to the standardised numeric features and keeps what a
window is compared with; the native core counts, per window, the sums of the standardised
values and of every product of two (``joint`` moments, exactly mergeable). At close, from those
sums alone:

- the **reconstruction error**: the mean squared distance of the window's events (centred on
  the window's means) from the subspace of the components that explain ``variance_share`` of
  the reference's variance; compared with its mean over a held-out half of the reference (the
  half the PCA was not fitted on: an in-sample error is biased low), in units of its standard
  error;
- every pair's **correlation**, against the reference's (Fisher's z).

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

import numpy as np

__all__ = ["JointCheck", "JointReference", "fit_joint", "joint_statistics"]

MIN_FEATURES = 3
MIN_ROWS = 100
CLIP = 16.0  # standardised values beyond are counted as this (as the native core does)


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

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JointReference) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.features, self.sample_size, self.error_mean))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (a profile file's ``joint`` section)."""
        return {
            "features": list(self.features),
            "mean": list(self.mean),
            "sd": list(self.sd),
            "kept": self.kept,
            "discarded": list(self.discarded),
            "error_mean": self.error_mean,
            "error_sd": self.error_sd,
            "held_out": self.held_out,
            "correlations": list(self.correlations),
            "sample_size": self.sample_size,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JointReference:
        """Read :meth:`to_dict`'s output; ValueError naming the field that does not fit."""
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
        }
        for name, ok in sizes.items():
            if not ok:
                raise ValueError(f"joint.{name}")
        return reference


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def fit_joint(
    columns: Mapping[str, Sequence[Any]], names: Sequence[str], variance_share: float
) -> JointReference | None:
    """The joint reference of the numeric features ``names`` from their value columns.

    None when fewer than 3 features vary or fewer than 100 events have all of them: there is
    nothing joint to watch.
    """
    if len(names) < MIN_FEATURES:
        return None
    data = np.array([[_number(v) for v in columns[name]] for name in names], dtype=float).T
    if data.ndim != 2 or data.shape[0] == 0:
        return None
    complete = data[np.isfinite(data).all(axis=1)]
    if len(complete) < MIN_ROWS:
        return None
    sd = complete.std(axis=0, ddof=1)
    varying = np.isfinite(sd) & (sd > 0)
    if varying.sum() < MIN_FEATURES:
        return None
    features = tuple(name for name, keep in zip(names, varying, strict=True) if keep)
    complete = complete[:, varying]
    mean, sd = complete.mean(axis=0), sd[varying]
    z = np.clip((complete - mean) / sd, -CLIP, CLIP)
    # Fitted on one half; the error's band measured on the other.
    fit, held = z[0::2], z[1::2]
    values, vectors = np.linalg.eigh(np.cov(fit, rowvar=False))
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    share = np.cumsum(values) / values.sum()
    f = len(features)
    kept = min(int(np.searchsorted(share, variance_share - 1e-12)) + 1, f - 1)
    discarded = vectors[:, kept:].T  # rows: unit vectors of the components not kept
    centred = held - held.mean(axis=0)
    errors = ((centred @ discarded.T) ** 2).sum(axis=1)
    error_sd = float(errors.std(ddof=1))
    if not error_sd > 0:
        return None
    upper = np.triu_indices(f, k=1)
    correlations = np.corrcoef(z, rowvar=False)[upper]
    return JointReference(
        features=features,
        mean=array("d", mean.tolist()),
        sd=array("d", sd.tolist()),
        kept=kept,
        discarded=array("d", discarded.ravel().tolist()),
        error_mean=float(errors.mean()),
        error_sd=error_sd,
        held_out=len(held),
        correlations=array("d", np.clip(correlations, -0.999999, 0.999999).tolist()),
        sample_size=len(complete),
    )


class JointCheck(NamedTuple):
    """A window's multivariate test: the largest |z| of its tests, their combined p-value
    (Bonferroni) and the evidence for the alert."""

    value: float
    p_value: float
    evidence: dict[str, Any]


def _two_sided(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2.0))


def joint_statistics(
    reference: JointReference, n: int, sums: Sequence[float], cross: Sequence[float]
) -> JointCheck | None:
    """Test a window's joint moments (``n`` events, sums of z, sums of z_i z_j for i <= j row
    by row) against the reference; None when the window has fewer than 4 events or a feature
    did not vary in it."""
    f = len(reference.features)
    if n < 4 or len(sums) != f or len(cross) != f * (f + 1) // 2:
        return None
    means = np.asarray(sums, dtype=float) / n
    second = np.zeros((f, f))
    second[np.triu_indices(f)] = np.asarray(cross, dtype=float) / n
    second = second + np.triu(second, k=1).T
    covariance = second - np.outer(means, means)
    variances = np.diag(covariance)
    if not (variances > 0).all():
        return None
    discarded = np.asarray(reference.discarded).reshape(f - reference.kept, f)
    error = float(np.einsum("ij,jk,ik->", discarded, covariance, discarded))
    error_z = (error - reference.error_mean) / (
        reference.error_sd * math.sqrt(1.0 / n + 1.0 / reference.held_out)
    )
    scale = np.sqrt(variances)
    correlations = (covariance / np.outer(scale, scale))[np.triu_indices(f, k=1)]
    correlations = np.clip(correlations, -0.999999, 0.999999)
    spread = math.sqrt(1.0 / max(n - 3, 1) + 1.0 / max(reference.sample_size - 3, 1))
    pair_z = (np.arctanh(correlations) - np.arctanh(np.asarray(reference.correlations))) / spread
    tests = 1 + len(pair_z)
    strongest = int(np.argmax(np.abs(pair_z))) if len(pair_z) else 0
    largest = max(abs(error_z), float(np.abs(pair_z).max()) if len(pair_z) else 0.0)
    smallest_p = min(_two_sided(error_z), _two_sided(float(pair_z[strongest])))
    rows, columns = np.triu_indices(f, k=1)
    top = sorted(range(len(pair_z)), key=lambda i: -abs(float(pair_z[i])))[:3]
    return JointCheck(
        value=largest,
        p_value=min(1.0, smallest_p * tests),
        evidence={
            "reconstruction_error": error,
            "reference_error": reference.error_mean,
            "error_z": error_z,
            "components_kept": reference.kept,
            "features": len(reference.features),
            "pairs": [
                {
                    "features": [
                        reference.features[int(rows[i])],
                        reference.features[int(columns[i])],
                    ],
                    "correlation": float(correlations[i]),
                    "reference_correlation": float(reference.correlations[i]),
                    "z": float(pair_z[i]),
                }
                for i in top
            ],
        },
    )
