"""Performance of a model in one window, from (prediction, score, label) triples.

Counts, not samples: accuracy, precision, recall and F1 from confusion counts; ROC AUC from score
histograms per class (100 bins, so memory is fixed); log loss as a running sum; MAE, RMSE and R2
from running sums. Any window can be updated again when a late label arrives.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import Any

from stream_monitor._native import (
    binary_add_many,
    label_keys,  # label_key of each value, natively
)
from stream_monitor.monitor.reference import category_of

__all__ = [
    "LOWER_IS_BETTER",
    "SCORE_BINS",
    "BinaryPerformance",
    "MulticlassPerformance",
    "Performance",
    "RegressionPerformance",
    "auc_standard_error",
    "binary_add_many",
    "f1_error",
    "label_key",
    "label_keys",
    "make_performance",
    "proportion_error",
    "score_histogram",
]

LOWER_IS_BETTER = frozenset({"mae", "rmse", "log_loss"})
SCORE_BINS = _SCORE_BINS = 100  # score histograms: bins of width 0.01
_COUNT_MAX = 2**32 - 1  # score histograms are array("I"): counts saturate there


def score_histogram() -> array[int]:
    """Counts per score bin of two classes: the first ``SCORE_BINS``, then the other's."""
    return array("I", bytes(8 * _SCORE_BINS))


_MAX_CLASSES = 50
_EPS = 1e-15


def label_key(value: Any) -> str | None:
    """A canonical class key: booleans, 0/1 and "true"/"false" agree with each other."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float) and value in (0, 1):
        return "1" if value == 1 else "0"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return "1" if value.lower() == "true" else "0"
    return category_of(value)


class _Many:
    """:meth:`add` over several labelled predictions."""

    def add(self, prediction: Any, score: float | None, scores: Any, label: Any) -> bool:
        raise NotImplementedError  # pragma: no cover

    def add_many(
        self,
        predictions: Sequence[Any],
        scores: Sequence[float | None],
        per_class: Sequence[Any],
        labels: Sequence[Any],
        *,
        classes: tuple[list[str | None], list[str | None]] | None = None,
    ) -> list[bool]:
        """Count labelled predictions in order; whether each was wrong.

        ``classes``: the :func:`label_keys` of labels and predictions, when already worked out.
        """
        add = self.add
        rows = zip(predictions, scores, per_class, labels, strict=True)
        return [add(p, s, c, y) for p, s, c, y in rows]


def _mean_error(total: float, squares: float, n: int) -> float | None:
    """The standard error of a mean of ``n`` terms from their sum and their squares' sum."""
    if n < 2:
        return None
    mean = total / n
    return math.sqrt(max(squares / n - mean * mean, 0.0) / n)


def proportion_error(hits: float, counted: float) -> float | None:
    """The binomial standard error of ``hits / counted``."""
    if not counted:
        return None
    share = hits / counted
    return math.sqrt(share * (1 - share) / counted)


def f1_error(tp: float, counted: float) -> float | None:
    """F1's standard error by the delta method: F1 = 2t / (1 + t) for the share t of true
    positives among the ``counted`` predictions F1 counts (tp + fp + fn)."""
    error = proportion_error(tp, counted)
    return None if error is None else 2 / (1 + tp / counted) ** 2 * error


def auc_standard_error(auc: float, positives: float, negatives: float) -> float:
    """Hanley and McNeil's standard error of a ROC AUC from that many positives and negatives
    (at least one of each)."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


class BinaryPerformance(_Many):
    """Binary classification: confusion counts, score histograms, log loss."""

    __slots__ = (
        "fn",
        "fp",
        "log_loss_n",
        "log_loss_sq",
        "log_loss_sum",
        "positive",
        "scores",
        "tn",
        "tp",
    )

    def __init__(self, positive: str) -> None:
        self.positive = positive
        self.tp = self.fp = self.tn = self.fn = 0
        # Labelled scores per bin: positives' bins, then negatives' (one buffer of 800 bytes,
        # u32 counts that saturate as the native ones do).
        self.scores = score_histogram()
        self.log_loss_sum = self.log_loss_sq = 0.0  # its terms' sum and their squares' sum
        self.log_loss_n = 0

    @property
    def pos_scores(self) -> array[int]:
        """Labelled positives per score bin."""
        return self.scores[:_SCORE_BINS]

    @property
    def neg_scores(self) -> array[int]:
        """Labelled negatives per score bin."""
        return self.scores[_SCORE_BINS:]

    @property
    def count(self) -> int:
        """Labelled predictions counted."""
        return self.tp + self.fp + self.tn + self.fn

    def add(self, prediction: Any, score: float | None, scores: Any, label: Any) -> bool:
        """Count one labelled prediction; returns whether the prediction was wrong."""
        actual = label_key(label) == self.positive
        predicted = label_key(prediction) == self.positive
        if predicted:
            if actual:
                self.tp += 1
            else:
                self.fp += 1
        elif actual:
            self.fn += 1
        else:
            self.tn += 1
        if score is not None and math.isfinite(score):
            clipped = min(max(score, 0.0), 1.0)
            bucket = min(int(clipped * _SCORE_BINS), _SCORE_BINS - 1)
            at = bucket if actual else _SCORE_BINS + bucket
            self.scores[at] = min(self.scores[at] + 1, _COUNT_MAX)
            p = min(max(clipped, _EPS), 1 - _EPS)
            term = math.log(p if actual else 1 - p)
            self.log_loss_sum -= term
            self.log_loss_sq += term * term
            self.log_loss_n += 1
        return predicted != actual

    def add_many(
        self,
        predictions: Sequence[Any],
        scores: Sequence[float | None],
        per_class: Sequence[Any],
        labels: Sequence[Any],
        *,
        classes: tuple[list[str | None], list[str | None]] | None = None,
    ) -> list[bool]:
        """Count labelled predictions in order; whether each was wrong."""
        label_classes, predicted_classes = classes or (label_keys(labels), label_keys(predictions))
        tp, fp, fn, tn, (self.log_loss_sum, self.log_loss_sq), counted, wrong = binary_add_many(
            label_classes,
            predicted_classes,
            self.positive,
            scores,
            self.scores,
            (self.log_loss_sum, self.log_loss_sq),
        )
        self.tp += tp
        self.fp += fp
        self.fn += fn
        self.tn += tn
        self.log_loss_n += counted
        return wrong

    def roc_auc(self) -> float | None:
        """Area under the ROC curve from the score histograms (ties count half)."""
        pos_scores, neg_scores = self.pos_scores, self.neg_scores
        positives, negatives = sum(pos_scores), sum(neg_scores)
        if not positives or not negatives:
            return None
        below = 0
        area = 0.0
        for pos, neg in zip(pos_scores, neg_scores, strict=True):
            area += pos * (below + neg / 2)
            below += neg
        return area / (positives * negatives)

    def standard_error(self, metric: str) -> float | None:
        """The sampling standard error of ``metric``, where it has one here: F1 by the delta
        method on the share of true positives among the predictions it counts, ROC AUC by
        Hanley and McNeil's formula, log loss as a mean (accuracy, precision and recall are
        tested as proportions: None)."""
        if metric == "log_loss":
            return _mean_error(self.log_loss_sum, self.log_loss_sq, self.log_loss_n)
        if metric == "f1":
            return f1_error(self.tp, self.tp + self.fp + self.fn)
        auc = self.roc_auc() if metric == "roc_auc" else None
        if auc is None:
            return None
        return auc_standard_error(auc, sum(self.pos_scores), sum(self.neg_scores))

    def metrics(self) -> dict[str, float | None]:
        """Metric name to value (None where undefined)."""
        precision = _ratio(self.tp, self.tp + self.fp)
        recall = _ratio(self.tp, self.tp + self.fn)
        f1 = _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)
        return {
            "accuracy": _ratio(self.tp + self.tn, self.count),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "roc_auc": self.roc_auc(),
            "log_loss": _ratio(self.log_loss_sum, self.log_loss_n),
        }


class MulticlassPerformance(_Many):
    """Multiclass: per-class confusion counts (50 classes, rarer ones pooled), log loss."""

    __slots__ = (
        "correct",
        "count",
        "false_neg",
        "false_pos",
        "log_loss_n",
        "log_loss_sq",
        "log_loss_sum",
        "true_pos",
    )

    def __init__(self) -> None:
        self.count = self.correct = 0
        self.true_pos: dict[str, int] = {}
        self.false_pos: dict[str, int] = {}
        self.false_neg: dict[str, int] = {}
        self.log_loss_sum = self.log_loss_sq = 0.0
        self.log_loss_n = 0

    def _class(self, key: str | None) -> str:
        key = key if key is not None else "<none>"
        known = self.true_pos.keys() | self.false_pos.keys() | self.false_neg.keys()
        if key in known or len(known) < _MAX_CLASSES:
            return key
        return "<other>"

    def add(self, prediction: Any, score: float | None, scores: Any, label: Any) -> bool:
        """Count one labelled prediction; returns whether the prediction was wrong."""
        actual = self._class(label_key(label))
        predicted = self._class(label_key(prediction))
        self.count += 1
        if predicted == actual:
            self.correct += 1
            self.true_pos[actual] = self.true_pos.get(actual, 0) + 1
        else:
            self.false_pos[predicted] = self.false_pos.get(predicted, 0) + 1
            self.false_neg[actual] = self.false_neg.get(actual, 0) + 1
        if isinstance(scores, dict) and scores:
            by_key = {label_key(k): v for k, v in scores.items()}
            p = by_key.get(label_key(label))
            if isinstance(p, int | float) and math.isfinite(p):
                term = math.log(min(max(p, _EPS), 1 - _EPS))
                self.log_loss_sum -= term
                self.log_loss_sq += term * term
                self.log_loss_n += 1
        return predicted != actual

    def metrics(self) -> dict[str, float | None]:
        """Accuracy, macro precision/recall/F1, F1 per class, log loss."""
        classes = sorted(self.true_pos.keys() | self.false_pos.keys() | self.false_neg.keys())
        per_class: dict[str, float | None] = {}
        precisions, recalls, f1s = [], [], []
        for name in classes:
            tp = self.true_pos.get(name, 0)
            fp, fn = self.false_pos.get(name, 0), self.false_neg.get(name, 0)
            precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
            f1 = _ratio(2 * tp, 2 * tp + fp + fn)
            precisions.append(precision or 0.0)
            recalls.append(recall or 0.0)
            f1s.append(f1 or 0.0)
            per_class[f"f1[{name}]"] = f1
        result: dict[str, float | None] = {
            "accuracy": _ratio(self.correct, self.count),
            "precision": _ratio(sum(precisions), len(classes)),
            "recall": _ratio(sum(recalls), len(classes)),
            "f1": _ratio(sum(f1s), len(classes)),
            "log_loss": _ratio(self.log_loss_sum, self.log_loss_n),
        }
        result.update(per_class)
        return result

    def standard_error(self, metric: str) -> float | None:
        """The standard error of a macro score (each class's by a binomial for precision and
        recall, the delta method for F1, taken as independent) or of log loss; None for
        accuracy, which is tested as a proportion."""
        if metric == "log_loss":
            return _mean_error(self.log_loss_sum, self.log_loss_sq, self.log_loss_n)
        if metric not in {"precision", "recall", "f1"}:
            return None
        classes = self.true_pos.keys() | self.false_pos.keys() | self.false_neg.keys()
        if not classes:
            return None
        variance = 0.0
        for name in classes:
            tp = self.true_pos.get(name, 0)
            fp, fn = self.false_pos.get(name, 0), self.false_neg.get(name, 0)
            counted = {"precision": tp + fp, "recall": tp + fn, "f1": tp + fp + fn}[metric]
            error = f1_error(tp, counted) if metric == "f1" else proportion_error(tp, counted)
            variance += (error or 0.0) ** 2
        return math.sqrt(variance) / len(classes)


class RegressionPerformance(_Many):
    """Regression: running sums for MAE, RMSE and R2."""

    __slots__ = ("abs_sum", "count", "quad_sum", "sq_sum", "y_sq_sum", "y_sum")

    def __init__(self) -> None:
        self.count = 0
        self.abs_sum = self.sq_sum = self.quad_sum = self.y_sum = self.y_sq_sum = 0.0

    def add(self, prediction: Any, score: float | None, scores: Any, label: Any) -> bool:
        """Count one labelled prediction; returns True when either value is not a number."""
        if isinstance(prediction, bool) or isinstance(label, bool):
            return True
        if not isinstance(prediction, int | float) or not isinstance(label, int | float):
            return True
        error = float(prediction) - float(label)
        if not math.isfinite(error):
            return True
        self.count += 1
        self.abs_sum += abs(error)
        self.sq_sum += error * error
        self.quad_sum += error**4
        self.y_sum += label
        self.y_sq_sum += label * label
        return False

    def metrics(self) -> dict[str, float | None]:
        """MAE, RMSE and R2 (R2 undefined when the labels do not vary)."""
        if not self.count:
            return {"mae": None, "rmse": None, "r2": None}
        total = self.y_sq_sum - self.y_sum * self.y_sum / self.count
        return {
            "mae": self.abs_sum / self.count,
            "rmse": math.sqrt(self.sq_sum / self.count),
            "r2": 1 - self.sq_sum / total if total > 1e-12 else None,
        }

    def standard_error(self, metric: str) -> float | None:
        """Standard errors from the running sums: MAE's is the spread of |error| over sqrt n;
        RMSE's the spread of the squared errors by the delta method; R2's that of the mean
        squared error over the labels' variance."""
        n = self.count
        if n < 2:
            return None
        if metric == "mae":
            return _mean_error(self.abs_sum, self.sq_sum, n)
        mse = self.sq_sum / n
        squares = _mean_error(self.sq_sum, self.quad_sum, n)  # of the mean squared error
        if metric == "rmse" and mse > 0 and squares is not None:
            return squares / (2 * math.sqrt(mse))
        spread = self.y_sq_sum / n - (self.y_sum / n) ** 2
        if metric == "r2" and spread > 1e-12 and squares is not None:
            return squares / spread
        return None


Performance = BinaryPerformance | MulticlassPerformance | RegressionPerformance


def make_performance(task: str, positive: str) -> Performance:
    """The accumulator for a model's task."""
    if task == "regression":
        return RegressionPerformance()
    if task == "multiclass_classification":
        return MulticlassPerformance()
    return BinaryPerformance(positive)
