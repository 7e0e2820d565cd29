"""Reference profiles: what "normal" looks like for each feature and for the prediction.

A profile stores, per numeric feature, percentile bin edges with the reference counts in each bin,
quantiles, min/max, mean/std and the missing rate; per categorical feature, the most frequent
categories with their counts, the set of known categories, and the missing rate. Profiles come from
``stream-monitor profile`` (a JSON file) or from a model's first events (warm-up). Pure and
deterministic: the same values give the same profile and the same ``reference_id``.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import operator
import sys
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from stream_monitor.errors import StreamMonitorError
from stream_monitor.monitor.binning import (
    FINE_BINS,
    atom_edges,
    coarsen,
    narrow_f32,
    quantile,
    small_ints,
)
from stream_monitor.monitor.multivariate import JointReference, fit_joint

__all__ = [
    "PROFILE_FORMAT",
    "CategoricalReference",
    "FeatureReference",
    "NumericReference",
    "ReferenceError",
    "ReferenceProfile",
    "build_feature_reference",
    "category_of",
    "infer_type",
    "numeric_value",
    "profile_from_columns",
    "profile_from_rows",
]

PROFILE_FORMAT = "stream-monitor.reference/1"
COARSE_BINS = 10  # decile edges for PSI / JS / chi-square
TOP_CATEGORIES = 50
KNOWN_CATEGORIES_CAP = 10_000
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
QUANTILE_NAMES = tuple(f"p{round(q * 100):02d}" for q in QUANTILES)
OTHER = "__other__"
_FLOAT_MAX = sys.float_info.max


class ReferenceError(StreamMonitorError):
    """A reference profile file is unreadable or does not match the model."""


def numeric_value(value: Any) -> float | None:
    """A finite float for numbers and booleans; None for anything else (missing or mismatched)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):  # bool is an int: True/False count as 1/0
        return float(value)
    return None


def category_of(value: Any) -> str | None:
    """The category string of a value: strings as they are, booleans and numbers rendered."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    return None


@dataclass(frozen=True)
class NumericReference:
    """Binned reference distribution of a numeric feature."""

    edges: Sequence[float]  # compact array('d'); bisect and numpy read it directly
    counts: Sequence[int]  # per fine bin: len(edges) + 1 (array('l'))
    coarse_of: Sequence[int]  # fine bin -> coarse bin (array('B'): at most COARSE_BINS)
    coarse_counts: Sequence[int]
    quantiles: Mapping[str, float]  # names shared by every profile, values in an array
    minimum: float
    maximum: float
    mean: float
    std: float
    missing_rate: float
    sample_size: int
    kind: Literal["numeric"] = "numeric"

    @property
    def widths(self) -> list[float]:
        """Gap after each fine bin's upper edge (for Wasserstein); computed when needed."""
        gaps = [min(b - a, _FLOAT_MAX) for a, b in zip(self.edges, self.edges[1:], strict=False)]
        return [*gaps, 0.0, 0.0][: len(self.counts)]

    def bin_of(self, value: float) -> int:
        """Index of the fine bin holding ``value``."""
        return bisect.bisect_right(self.edges, value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the profile file format)."""
        return {
            "type": "numeric",
            "edges": list(self.edges),
            "counts": list(self.counts),
            "coarse_of": list(self.coarse_of),
            "quantiles": dict(self.quantiles),
            "min": self.minimum,
            "max": self.maximum,
            "mean": self.mean,
            "std": self.std,
            "missing_rate": self.missing_rate,
            "sample_size": self.sample_size,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericReference:
        """Inverse of :meth:`to_dict`."""
        counts = array("q", (int(c) for c in data["counts"]))
        coarse_of = small_ints(int(c) for c in data["coarse_of"])
        return cls(
            edges=array("d", (float(e) for e in data["edges"])),
            counts=counts,
            coarse_of=coarse_of,
            coarse_counts=coarsen(counts, coarse_of),
            quantiles=Quantiles.of({str(k): float(v) for k, v in data["quantiles"].items()}),
            minimum=float(data["min"]),
            maximum=float(data["max"]),
            mean=float(data["mean"]),
            std=float(data["std"]),
            missing_rate=float(data["missing_rate"]),
            sample_size=int(data["sample_size"]),
        )


class Quantiles(Mapping[str, float]):
    """Quantile name -> value, read-only; the names tuple is shared by every profile."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: tuple[str, ...], values: array[float]) -> None:
        self._names = names
        self._values = values

    @classmethod
    def of(cls, mapping: Mapping[str, float]) -> Quantiles:
        """From any mapping (the shared names when they are the usual ones)."""
        names = tuple(mapping)
        return cls(
            QUANTILE_NAMES if names == QUANTILE_NAMES else names,
            array("d", mapping.values()),
        )

    def __getitem__(self, name: str) -> float:
        try:
            return self._values[self._names.index(name)]
        except ValueError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self) == dict(other)

    def __hash__(self) -> int:
        return hash((self._names, tuple(self._values)))

    def __repr__(self) -> str:
        return repr(dict(self))


@dataclass(frozen=True)
class CategoricalReference:
    """Reference frequencies of a categorical feature."""

    categories: tuple[str, ...]  # most frequent first (ties by name)
    counts: tuple[int, ...]  # per category, then one "other" bucket for the rarer known ones
    known: frozenset[str]
    missing_rate: float
    sample_size: int
    kind: Literal["categorical"] = "categorical"
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {c: i for i, c in enumerate(self.categories)})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the profile file format)."""
        return {
            "type": "categorical",
            "categories": list(self.categories),
            "counts": list(self.counts),
            "known": sorted(self.known),
            "missing_rate": self.missing_rate,
            "sample_size": self.sample_size,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalReference:
        """Inverse of :meth:`to_dict`."""
        return cls(
            categories=tuple(str(c) for c in data["categories"]),
            counts=tuple(int(c) for c in data["counts"]),
            known=frozenset(str(c) for c in data["known"]),
            missing_rate=float(data["missing_rate"]),
            sample_size=int(data["sample_size"]),
        )


FeatureReference = NumericReference | CategoricalReference


def _numeric_reference(values: list[float], total: int) -> NumericReference | None:
    if not values:
        return None
    ordered = sorted(values)
    quantiles = {quantile(ordered, i / FINE_BINS) for i in range(1, FINE_BINS)}
    fine = sorted({narrow_f32(q) for q in quantiles} | atom_edges(ordered, quantiles))
    deciles = {narrow_f32(quantile(ordered, i / COARSE_BINS)) for i in range(1, COARSE_BINS)}
    # Bin i holds the values v with fine[i - 1] <= v < fine[i] (the native core's
    # bisect_right of v among the edges); values are sorted, so a bin's count is the step
    # between its edges' positions.
    bounds = [0, *(bisect.bisect_left(ordered, edge) for edge in fine), len(ordered)]
    counts = [high - low for low, high in itertools.pairwise(bounds)]
    # Fine bin i lies below edge fine[i]; it joins the coarse bin of the deciles below that edge.
    coarse_edges = sorted(deciles)
    coarse_of = small_ints(bisect.bisect_left(coarse_edges, e) for e in fine)
    coarse_of.append(len(coarse_edges))
    try:
        n = len(ordered)
        mean = math.fsum(ordered) / n
        # deviations and their squares in C (map), summed exactly
        deviations = list(map(operator.sub, ordered, itertools.repeat(mean, n)))
        variance = math.fsum(map(operator.mul, deviations, deviations)) / max(n - 1, 1)
        if math.isinf(variance):  # a square overflowed (``** 2`` would have raised)
            raise OverflowError  # noqa: TRY301 - the same handling as fsum's own overflow
    except OverflowError:  # values near the float limit: keep the profile usable
        mean, variance = quantile(ordered, 0.5), _FLOAT_MAX
    std = min(math.sqrt(variance), _FLOAT_MAX)
    return NumericReference(
        edges=array("d", fine),
        counts=array("q", counts),
        coarse_of=coarse_of,
        coarse_counts=coarsen(counts, coarse_of),
        quantiles=Quantiles(QUANTILE_NAMES, array("d", (quantile(ordered, q) for q in QUANTILES))),
        minimum=ordered[0],
        maximum=ordered[-1],
        mean=mean,
        std=std,
        missing_rate=(total - len(values)) / total,
        sample_size=total,
    )


def _categorical_reference(values: list[str], total: int) -> CategoricalReference | None:
    if not values:
        return None
    frequency = Counter(values)
    ranked = sorted(frequency.items(), key=lambda item: (-item[1], item[0]))
    top = ranked[:TOP_CATEGORIES]
    other = sum(count for _, count in ranked[TOP_CATEGORIES:])
    known = [name for name, _ in ranked[:KNOWN_CATEGORIES_CAP]]
    return CategoricalReference(
        categories=tuple(name for name, _ in top),
        counts=(*(count for _, count in top), other),
        known=frozenset(known),
        missing_rate=(total - len(values)) / total,
        sample_size=total,
    )


def build_feature_reference(
    kind: Literal["numeric", "categorical"], raw_values: Iterable[Any]
) -> FeatureReference | None:
    """A reference from raw values (None = missing); None when no usable value was seen."""
    if kind == "numeric" and isinstance(raw_values, array) and raw_values.typecode == "d":
        # the warm-up's numeric columns (NaN = missing): filtered in C, not value by value
        return _numeric_reference(list(filter(math.isfinite, raw_values)), len(raw_values))
    raw = list(raw_values)
    if kind == "numeric":
        numbers = [v for v in map(numeric_value, raw) if v is not None]
        return _numeric_reference(numbers, len(raw))
    categories = [c for c in map(category_of, raw) if c is not None]
    return _categorical_reference(categories, len(raw))


@dataclass(frozen=True)
class ReferenceProfile:
    """The reference of one model: per feature, and for the prediction signal."""

    model_id: str
    features: dict[str, FeatureReference]
    prediction: FeatureReference | None
    prediction_signal: Literal["score", "prediction"]
    sample_size: int
    source: str  # "warmup" or "file"
    performance: dict[str, float | None] = field(default_factory=dict)
    joint: JointReference | None = None
    # Per segment (``channel=phone``), the reference of its events alone.
    segments: dict[str, ReferenceProfile] = field(default_factory=dict)
    reference_id: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.reference_id:
            content = self._content(packed=True)
            digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS))
            object.__setattr__(self, "reference_id", "ref-" + digest.hexdigest()[:12])

    def _content(self, *, packed: bool = False) -> dict[str, Any]:
        content = {
            "model_id": self.model_id,
            "sample_size": self.sample_size,
            "prediction_signal": self.prediction_signal,
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "features": {name: ref.to_dict() for name, ref in self.features.items()},
            "performance": self.performance,
        }
        if self.joint is not None:  # profiles without one keep their ids
            content["joint"] = self.joint.to_dict(packed)
        if self.segments:  # likewise
            content["segments"] = {
                label: profile._content(packed=packed)
                for label, profile in sorted(self.segments.items())
            }
        return content

    def to_json(self) -> bytes:
        """The profile file contents."""
        document = {"format": PROFILE_FORMAT, "reference_id": self.reference_id, **self._content()}
        return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, data: bytes, source: str = "file") -> ReferenceProfile:
        """Read a profile file, or raise :class:`ReferenceError` saying what is wrong."""
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ReferenceError(f"{source}: is not JSON ({exc}); re-create it") from None
        if not isinstance(document, dict) or document.get("format") != PROFILE_FORMAT:
            found = document.get("format") if isinstance(document, dict) else type(document)
            raise ReferenceError(
                f"{source}: format {found!r} is not {PROFILE_FORMAT!r}; "
                "re-create it with `stream-monitor profile`"
            )
        try:
            return cls._from_document(document)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ReferenceError(
                f"{source}: field {exc} is missing or invalid; re-create the profile"
            ) from None

    @classmethod
    def _from_document(cls, document: Mapping[str, Any]) -> ReferenceProfile:
        features = {
            str(name): _feature_from_dict(spec) for name, spec in document["features"].items()
        }
        prediction = document.get("prediction")
        joint = document.get("joint")
        segments = document.get("segments") or {}
        return cls(
            model_id=str(document["model_id"]),
            features=features,
            prediction=_feature_from_dict(prediction) if prediction else None,
            prediction_signal=document["prediction_signal"],
            sample_size=int(document["sample_size"]),
            source="file",
            performance={
                str(k): None if v is None else float(v)
                for k, v in document.get("performance", {}).items()
            },
            joint=JointReference.from_dict(joint) if joint else None,
            segments={str(label): cls._from_document(part) for label, part in segments.items()},
        )


def _feature_from_dict(data: Mapping[str, Any]) -> FeatureReference:
    if data.get("type") == "numeric":
        return NumericReference.from_dict(data)
    if data.get("type") == "categorical":
        return CategoricalReference.from_dict(data)
    raise ValueError(f"'type' ({data.get('type')!r})")


Row = tuple[Mapping[str, Any], Any, Any]  # (features, score, prediction) of one event


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def infer_type(values: Iterable[Any]) -> Literal["numeric", "categorical"]:
    """Numeric when every present value is a (non-bool) number, otherwise categorical."""
    if isinstance(values, array) and values.typecode == "d":  # numbers, NaN for missing
        return "numeric" if not all(map(math.isnan, values)) else "categorical"
    present = [v for v in values if v is not None and not _is_nan(v)]  # NaN marks missing too
    if present and all(type(v) in (int, float) for v in present):
        return "numeric"
    return "categorical"


def profile_from_rows(
    model_id: str,
    types: Mapping[str, Literal["numeric", "categorical"]],
    task: str,
    rows: Sequence[Row],
    source: str = "warmup",
) -> ReferenceProfile:
    """A reference profile from events' ``(features, score, prediction)`` rows."""
    names = types or sorted({name for features, _, _ in rows for name in features})
    columns = {name: [features.get(name) for features, _, _ in rows] for name in names}
    return profile_from_columns(
        model_id,
        types,
        task,
        columns,
        scores=[s for _, s, _ in rows],
        predictions=[p for _, _, p in rows],
        source=source,
    )


def profile_from_columns(
    model_id: str,
    types: Mapping[str, Literal["numeric", "categorical"]],
    task: str,
    columns: Mapping[str, Sequence[Any]],
    *,
    scores: Sequence[float | None],
    predictions: Sequence[Any],
    source: str = "warmup",
    variance_share: float | None = 0.9,
) -> ReferenceProfile:
    """A reference profile from value columns (None or NaN = missing).

    Feature types are inferred when ``types`` is empty. The prediction signal is the score when
    any event carries one, else the prediction itself (numeric for regression, categorical
    otherwise). With ``variance_share``, the numeric features' joint reference is fitted too
    (:func:`~stream_monitor.monitor.multivariate.fit_joint`).
    """
    if not types:
        types = {name: infer_type(columns[name]) for name in sorted(columns)}
    present_scores = [s for s in scores if s is not None and not _is_nan(s)]
    signal: Literal["score", "prediction"] = "score" if present_scores else "prediction"
    if present_scores:
        prediction = build_feature_reference("numeric", scores)
    else:
        kind: Literal["numeric", "categorical"] = (
            "numeric" if task == "regression" else "categorical"
        )
        prediction = build_feature_reference(kind, predictions)
    features: dict[str, FeatureReference] = {}
    for name, kind in types.items():
        reference = build_feature_reference(kind, columns.get(name, [None] * len(predictions)))
        if reference is not None:
            features[name] = reference
    numeric = {
        name: (ref.edges, ref.counts)
        for name, ref in features.items()
        if isinstance(ref, NumericReference)
    }
    joint = (
        fit_joint(columns, list(numeric), variance_share, numeric)
        if variance_share is not None
        else None
    )
    return ReferenceProfile(
        model_id=model_id,
        features=features,
        prediction=prediction,
        prediction_signal=signal,
        sample_size=len(predictions),
        source=source,
        joint=joint,
    )
