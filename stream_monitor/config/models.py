"""Per-model monitor specs: what to watch for one ``model_id`` and when to alert.

Durations are seconds (floats). Thresholds are on statistics where a higher value is worse,
so ``critical`` must be at least ``warning``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

__all__ = [
    "AlertingSpec",
    "DriftSpec",
    "FeatureType",
    "ModelSpec",
    "PerformanceSpec",
    "QualitySpec",
    "SegmentSpec",
    "Task",
    "WindowSpec",
]

Task = Literal["binary_classification", "multiclass_classification", "regression"]
FeatureType = Literal["numeric", "categorical"]
DriftStatistic = Literal["psi", "jensen_shannon", "ks", "wasserstein", "chi_square"]
PerformanceMetric = Literal[
    "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "mae", "rmse", "r2"
]
Detector = Literal["adwin", "page_hinkley"]
ErrorDetector = Literal["ddm", "eddm", "hddm_a", "hddm_w"]

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Rate = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class _Spec(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", hide_input_in_errors=True, validate_default=True
    )


def _critical_not_below_warning(value: float, info: ValidationInfo, warning_field: str) -> float:
    warning = info.data.get(warning_field)
    if warning is not None and value < warning:
        raise PydanticCustomError(
            "critical_below_warning",
            "must be >= {field} ({warning})",
            {"field": warning_field, "warning": warning},
        )
    return value


class WindowSpec(_Spec):
    """How events are grouped into windows.

    ``count`` closes a window every ``events`` events of the model; ``tumbling`` and
    ``hopping`` use event time (``size`` and ``step`` in seconds) and close when the
    watermark (largest event time seen minus ``allowed_lateness``) passes the window end.
    """

    kind: Literal["count", "tumbling", "hopping"] = Field(
        "count", description="Window type: count, tumbling (event time) or hopping (event time)."
    )
    events: int = Field(1000, ge=10, le=10_000_000, description="Events per count window.")
    size: PositiveFloat = Field(300.0, description="Event-time window length in seconds.")
    step: PositiveFloat | None = Field(
        None, description="Hop in seconds for hopping windows (must be < size)."
    )
    allowed_lateness: float = Field(
        60.0, ge=0, allow_inf_nan=False, description="Seconds an event may arrive late."
    )

    @field_validator("step")
    @classmethod
    def _step_below_size(cls, value: float | None, info: ValidationInfo) -> float | None:
        size = info.data.get("size")
        if value is not None and size is not None and value >= size:
            raise PydanticCustomError(
                "step_not_below_size", "must be < size ({size})", {"size": size}
            )
        if value is None and info.data.get("kind") == "hopping":
            raise PydanticCustomError(
                "step_required", "is required when kind is hopping (set window.step)"
            )
        return value


class MultivariateSpec(_Spec):
    """Multivariate drift: how the numeric features vary together (PCA reconstruction error
    and pairwise correlations against the reference; see docs/monitoring.md)."""

    enabled: bool = Field(
        True,
        description="Test the joint distribution of the numeric features (models with 3 or more "
        "numeric features that vary in the reference).",
    )
    variance_share: float = Field(
        0.9,
        gt=0,
        lt=1,
        description="Share of the reference's variance the kept PCA components explain; the "
        "reconstruction error is the distance from their subspace.",
    )
    critical_z: PositiveFloat = Field(
        10.0,
        description="A significant window whose largest |z| (error or a pair's correlation) "
        "reaches this is critical; otherwise a warning.",
    )


class DriftSpec(_Spec):
    """Drift of features and of the prediction against the reference."""

    statistic: DriftStatistic = Field("psi", description="Statistic compared with thresholds.")
    warning: PositiveFloat = Field(0.1, description="Statistic value that raises a warning.")
    critical: PositiveFloat = Field(0.25, description="Statistic value that raises a critical.")
    min_samples: int = Field(
        200, ge=10, description="Events a window needs before drift is tested."
    )
    significance: float = Field(
        1e-4,
        gt=0,
        lt=1,
        description="Family-wise significance per window: a statistic over its threshold also "
        "needs a test p-value below significance / (features tested), Bonferroni.",
    )
    detectors: tuple[Detector, ...] = Field(
        ("adwin",),
        description="Change detectors run on every event of each numeric feature and the score "
        "(standardised by the reference, in the native core): adwin, page_hinkley.",
    )
    detector_delta: float = Field(
        1e-6, gt=0, lt=1, description="ADWIN confidence delta (smaller: fewer false alarms)."
    )
    detector_block: int = Field(
        1,
        ge=1,
        le=1000,
        description="Values averaged into one detector update: cuts detector cost by the block "
        "size, but slows detection (ADWIN's bound has a term that does not shrink with the "
        "variance of block means).",
    )
    rebaseline_after_resolve: bool = Field(
        False,
        description="After a drift alert resolves, learn a new reference from the next "
        "warmup_events events.",
    )
    multivariate: MultivariateSpec = Field(default_factory=MultivariateSpec)

    @field_validator("detectors", mode="before")
    @classmethod
    def _no_kswin(cls, value: Any) -> Any:
        if isinstance(value, list | tuple) and "kswin" in value:
            raise PydanticCustomError(
                "kswin_removed",
                "kswin is no longer offered: it cost about 140 us per update, too slow for every "
                "event; use adwin (default) or page_hinkley",
            )
        return value

    @field_validator("critical")
    @classmethod
    def _critical(cls, value: float, info: ValidationInfo) -> float:
        return _critical_not_below_warning(value, info, "warning")


class PerformanceSpec(_Spec):
    """Performance compared with the reference performance once labels arrive."""

    metric: PerformanceMetric = Field("accuracy", description="Metric the rule watches.")
    warning_drop: PositiveFloat = Field(
        0.05, description="Worsening from the reference value that raises a warning."
    )
    critical_drop: PositiveFloat = Field(
        0.10, description="Worsening from the reference value that raises a critical."
    )
    min_labels: int = Field(
        100, ge=10, description="Labelled predictions a window needs before the rule is tested."
    )
    reference_labels: int = Field(
        1000,
        ge=10,
        description="Labelled predictions that set the reference performance "
        "when the profile has none.",
    )
    positive_label: str = Field(
        "1", description='Positive class of binary models (true, 1 and "true" all match 1).'
    )
    label_ttl: PositiveFloat = Field(
        86_400.0, description="Seconds (event time) a prediction waits for its label."
    )
    max_pending_predictions: int = Field(
        50_000, ge=1, description="Predictions kept waiting for labels per model (oldest evicted)."
    )
    max_pending_labels: int = Field(
        10_000, ge=1, description="Labels kept waiting for their prediction per model."
    )
    rolling_window: int = Field(
        1000,
        ge=10,
        description="Labelled predictions in the rolling view (rolling_accuracy, or rolling_mae "
        "for regression) reported with every window.",
    )
    revision_windows: int = Field(
        200, ge=0, description="Closed windows kept so that late labels can revise them."
    )
    estimation: bool = Field(
        True,
        description="Binary classifiers with scores: estimate each window's performance from "
        "its scores, calibrated on the reference's labelled predictions (CBPE), and alert "
        "(rule estimated_performance) on a drop while the window has too few labels.",
    )
    estimation_floor: PositiveFloat = Field(
        0.01,
        description="Smallest fall of the estimated metric below the reference's estimate that "
        "can alert: the effect-size floor on top of the band test (the estimate's spread over "
        "windows of the reference's size).",
    )
    detectors: tuple[ErrorDetector, ...] = Field(
        ("hddm_a",),
        description="Change detectors on the error stream of classifiers: ddm, eddm, hddm_a, "
        "hddm_w.",
    )
    detector_block: int = Field(
        1,
        ge=1,
        le=1000,
        description="Labelled predictions whose error rate is one detector update (keep 1 with "
        "eddm, which needs single errors).",
    )
    detector_confidence: float = Field(
        1e-6,
        gt=0,
        lt=1,
        description="Drift confidence of hddm_a and hddm_w (smaller: fewer false alarms); ddm "
        "and eddm have none.",
    )

    @field_validator("critical_drop")
    @classmethod
    def _critical(cls, value: float, info: ValidationInfo) -> float:
        return _critical_not_below_warning(value, info, "warning_drop")


class QualitySpec(_Spec):
    """Data-quality thresholds per window."""

    missing_warning: Rate = Field(
        0.05, description="Missing or invalid rate above the reference's that warns."
    )
    missing_critical: Rate = Field(
        0.20, description="Missing or invalid rate above the reference's that is critical."
    )
    out_of_range_warning: Rate = Field(
        0.05, description="Share of values outside the reference range that warns."
    )
    out_of_range_critical: Rate = Field(
        0.20, description="Share of values outside the reference range that is critical."
    )

    @field_validator("missing_critical")
    @classmethod
    def _critical(cls, value: float, info: ValidationInfo) -> float:
        return _critical_not_below_warning(value, info, "missing_warning")

    @field_validator("out_of_range_critical")
    @classmethod
    def _critical_range(cls, value: float, info: ValidationInfo) -> float:
        return _critical_not_below_warning(value, info, "out_of_range_warning")


class AlertingSpec(_Spec):
    """Alert lifecycle: repeats, hysteresis and cooldown (event-time seconds)."""

    repeat_interval: PositiveFloat = Field(
        3600.0, description="Seconds between repeats of an alert that keeps breaching."
    )
    resolve_after: int = Field(
        3, ge=1, description="Consecutive healthy windows before an alert resolves."
    )
    cooldown: float = Field(
        300.0, ge=0, allow_inf_nan=False, description="Seconds after resolving before re-firing."
    )


class CompareSpec(_Spec):
    """The ``compare`` rule: values of one segmentation side by side in the same window
    (a champion model version and its challengers)."""

    by: str = Field(
        "model_version",
        description="The segments.by entry whose values are compared; the rule runs only when "
        "it is one of segments.by.",
    )
    baseline: str | None = Field(
        None,
        description="The value the others are compared with (the champion, e.g. v1); by "
        "default the value seen first (the version live before its challengers).",
    )
    performance_drop: PositiveFloat = Field(
        0.05,
        description="Alert when a value's performance metric is worse than the baseline's by "
        "this much (both with performance.min_labels labels in the window).",
    )
    prediction_psi: PositiveFloat = Field(
        0.1,
        description="Alert when the PSI between a value's predictions and the baseline's "
        "(scores on a fixed grid, else predicted classes) reaches this.",
    )


class SegmentSpec(_Spec):
    """Per-segment monitoring: every value of a ``by`` entry gets its own windows' drift,
    quality and performance, with its own reference (see docs/monitoring.md)."""

    by: tuple[str, ...] = Field(
        (),
        max_length=8,
        description="What splits the events: a categorical feature's name, metadata.<key> or "
        "model_version. Empty: no segments.",
    )
    max_values: int = Field(
        20,
        ge=1,
        le=1000,
        description="Values tracked per entry, the first seen; later values pool as __other__.",
    )
    min_events: int = Field(
        50,
        ge=10,
        description="Rules judge a segment's window only when it holds this many events, and "
        "its drift tests need this many values (drift.min_samples if lower); its summary is "
        "published either way. Small segments are tested on small windows: the significance "
        "gate, not the statistic's threshold, keeps them quiet.",
    )
    warmup_events: int | None = Field(
        None,
        ge=10,
        description="Events of a segment used as its reference when the profile file has "
        "none for it; by default the model's warmup_events.",
    )
    compare: CompareSpec = Field(default_factory=CompareSpec)

    @field_validator("by")
    @classmethod
    def _entries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            if not entry or entry == "metadata." or entry.startswith("__"):
                raise PydanticCustomError(
                    "segment_entry",
                    "entry '{entry}' names nothing; use a categorical feature's name, "
                    "metadata.<key> or model_version",
                    {"entry": entry},
                )
        if len(set(value)) != len(value):
            raise PydanticCustomError("segment_repeat", "lists an entry twice")
        return value


class ModelSpec(_Spec):
    """What to monitor for one model."""

    task: Task = Field("binary_classification", description="Kind of model.")
    features: dict[str, FeatureType] = Field(
        default_factory=dict,
        description="Feature name to type; empty means inferred during warm-up.",
    )
    reference: Path | None = Field(
        None, description="Reference profile file (from `stream-monitor profile`)."
    )
    warmup_events: int = Field(
        1000, ge=10, description="Events used as reference when no profile file is given."
    )
    window: WindowSpec = Field(default_factory=WindowSpec)
    drift: DriftSpec = Field(default_factory=DriftSpec)
    performance: PerformanceSpec = Field(default_factory=PerformanceSpec)
    quality: QualitySpec = Field(default_factory=QualitySpec)
    alerting: AlertingSpec = Field(default_factory=AlertingSpec)
    segments: SegmentSpec = Field(default_factory=SegmentSpec)
    runbook_url: str | None = Field(None, description="Link put on every alert of this model.")
    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels copied onto every alert of this model."
    )

    @field_validator("segments")
    @classmethod
    def _segments_are_categorical(cls, value: SegmentSpec, info: ValidationInfo) -> SegmentSpec:
        features = info.data.get("features") or {}
        for entry in value.by:
            if features.get(entry) == "numeric":
                raise PydanticCustomError(
                    "segment_numeric",
                    "entry '{entry}' is a numeric feature; segment by a categorical feature, "
                    "metadata.<key> or model_version (bucket the number upstream)",
                    {"entry": entry},
                )
        return value

    @field_validator("reference")
    @classmethod
    def _reference_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise PydanticCustomError(
                "reference_missing",
                "does not exist; create it with `stream-monitor profile` or remove the setting",
            )
        return value
