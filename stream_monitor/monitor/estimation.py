"""Performance without labels: confidence-based estimation for binary classifiers with scores.

The model's scores are calibrated once, on the labelled predictions that set the reference
performance: per score bin (the 100 bins of the performance histograms), the share of positives,
made non-decreasing in the score by pool-adjacent-violators (isotonic regression), bins without
labels interpolated between their neighbours. A window then counts its scored predictions per
bin and predicted class (no label needed), and the calibrated probability ``p`` of each bin gives
the expected confusion counts: a predicted positive is a true positive with probability ``p``, a
predicted negative a false negative with probability ``p``. Accuracy, precision, recall and F1
follow from those, and ROC AUC from the bins weighted by ``p`` and ``1 - p``. This is what
NannyML calls CBPE; it holds while the relation between score and truth stays as calibrated
(covariate shift), and says nothing about concept drift, which only labels show.

Regression is not covered: without labels, nothing here says how far off a prediction is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

from stream_monitor.monitor.performance import auc_standard_error, f1_error, proportion_error

__all__ = ["ESTIMATED", "Band", "calibrate", "estimate", "standard_error"]

ESTIMATED = ("accuracy", "precision", "recall", "f1", "roc_auc")


def calibrate(positives: Sequence[int], negatives: Sequence[int]) -> list[float] | None:
    """P(positive) per score bin from labelled counts per bin; None without both classes."""
    if not any(positives) or not any(negatives):
        return None
    blocks: list[list[float]] = []  # [weight, positives, first bin, last bin], as floats
    for b, (pos, neg) in enumerate(zip(positives, negatives, strict=True)):
        if pos + neg == 0:
            continue
        blocks.append([float(pos + neg), float(pos), float(b), float(b)])
        # Pool adjacent violators: merge while a block's rate exceeds the next one's.
        while len(blocks) > 1 and blocks[-2][1] * blocks[-1][0] > blocks[-1][1] * blocks[-2][0]:
            weight, pos_, _, last = blocks.pop()
            blocks[-1][0] += weight
            blocks[-1][1] += pos_
            blocks[-1][3] = last
    out: list[float | None] = [None] * len(positives)
    for weight, hits, first, last in blocks:  # a block's bins (empty ones too) share its rate
        for b in range(int(first), int(last) + 1):
            out[b] = hits / weight
    known = [b for b, rate in enumerate(out) if rate is not None]
    for b, rate in enumerate(out):  # between blocks: along the line joining them
        if rate is not None:
            continue
        lower = max((k for k in known if k < b), default=None)
        upper = min((k for k in known if k > b), default=None)
        nearest = upper if lower is None else lower
        if lower is None or upper is None:  # beyond the labelled scores: the nearest rate
            out[b] = out[nearest] if nearest is not None else None
            continue
        low, high = out[lower] or 0.0, out[upper] or 0.0
        out[b] = low + (high - low) * (b - lower) / (upper - lower)
    return [0.0 if rate is None else rate for rate in out]


class Band(NamedTuple):
    """The reference's estimate of a metric and the standard error of that estimate over the
    reference's scored predictions (a window's estimate is compared with it)."""

    value: float
    standard_error: float


def standard_error(
    metric: str,
    calibration: Sequence[float],
    predicted_positive: Sequence[int],
    predicted_negative: Sequence[int],
) -> float | None:
    """The sampling standard error of a window's estimated ``metric``.

    Accuracy is the mean over the window's predictions of each one's chance of being right
    (``p`` for a predicted positive, ``1 - p`` for a predicted negative): its standard error is
    their standard deviation over sqrt n, exactly. ROC AUC takes Hanley and McNeil's formula
    with the expected numbers of positives and negatives; precision and recall a binomial one,
    F1 the delta method on the expected counts, as the realised metrics take them (wider than
    the estimate's own spread: conservative).
    None when undefined (no scored prediction, or one class expected only)."""
    n = first = second = tp = fp = fn = 0.0
    for p, pp, pn in zip(calibration, predicted_positive, predicted_negative, strict=True):
        n += pp + pn
        first += pp * p + pn * (1 - p)
        second += pp * p * p + pn * (1 - p) * (1 - p)
        tp, fp, fn = tp + pp * p, fp + pp * (1 - p), fn + pn * p
    if n == 0:
        return None
    if metric == "accuracy":
        mean = first / n
        return math.sqrt(max(second / n - mean * mean, 0.0) / n)
    if metric == "f1":
        return f1_error(tp, tp + fp + fn)
    if metric in {"precision", "recall"}:
        return proportion_error(tp, tp + fp if metric == "precision" else tp + fn)
    positives, negatives = tp + fn, n - tp - fn
    auc = estimate(calibration, predicted_positive, predicted_negative).get(metric)
    if metric != "roc_auc" or auc is None or positives < 1 or negatives < 1:
        return None
    return auc_standard_error(auc, positives, negatives)


def estimate(
    calibration: Sequence[float],
    predicted_positive: Sequence[int],
    predicted_negative: Sequence[int],
) -> dict[str, float | None]:
    """Expected metrics of a window from its scored predictions per bin and predicted class.

    ROC AUC: the bins in score order, each weighted by ``p`` as positives and ``1 - p`` as
    negatives (ties count half). One pass; a bin without predictions adds nothing."""
    tp = fp = fn = tn = 0.0
    total_pos = total_neg = below = area = 0.0
    for p, pp, pn in zip(calibration, predicted_positive, predicted_negative, strict=True):
        scored = pp + pn
        if not scored:
            continue
        q = 1 - p
        tp += pp * p
        fp += pp * q
        fn += pn * p
        tn += pn * q
        positive, negative = scored * p, scored * q
        total_pos += positive
        total_neg += negative
        area += positive * (below + negative / 2)
        below += negative
    n = tp + fp + fn + tn
    if n == 0:
        return {}
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    auc = area / (total_pos * total_neg) if total_pos > 0 and total_neg > 0 else None
    return {
        "accuracy": (tp + tn) / n,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": auc,
    }
