"""Input events: what model servers send. Pure data, no I/O.

Times are stored in one canonical form: integer milliseconds since the Unix epoch (UTC).
Producers may send epoch milliseconds or an ISO-8601 string with a zone.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator
from pydantic_core import PydanticCustomError

__all__ = [
    "SCHEMA_VERSION",
    "EpochMillis",
    "FeatureValue",
    "LabelEvent",
    "LabelValue",
    "PredictionEvent",
    "PredictionLike",
    "to_epoch_millis",
]

SCHEMA_VERSION = 1
_MIN_MS = 100_000_000_000  # 1973-03-03: anything smaller is almost surely epoch *seconds*
_MAX_MS = 10_000_000_000_000  # year 2286


def to_epoch_millis(value: Any) -> Any:
    """Accept epoch milliseconds or ISO-8601 with a zone; return integer epoch milliseconds."""
    if isinstance(value, bool):
        raise PydanticCustomError("timestamp_type", "must be epoch milliseconds or ISO-8601")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise PydanticCustomError("timestamp_finite", "must be a finite number")
        if not _MIN_MS <= value < _MAX_MS:
            raise PydanticCustomError(
                "timestamp_range",
                "is out of range: send milliseconds since the Unix epoch "
                "(a value this small is probably seconds; multiply by 1000)",
            )
        return int(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError(
                "timestamp_format", "is not ISO-8601; use e.g. 2026-11-27T17:00:00Z"
            ) from None
        if parsed.tzinfo is None:
            raise PydanticCustomError(
                "timestamp_zone", "has no time zone; add Z or an offset such as +01:00"
            )
        millis = int(parsed.astimezone(UTC).timestamp() * 1000)
        if not 0 <= millis < _MAX_MS:
            raise PydanticCustomError("timestamp_range", "is out of range (1970 to 2286)")
        return millis
    raise PydanticCustomError("timestamp_type", "must be epoch milliseconds or ISO-8601")


EpochMillis = Annotated[int, BeforeValidator(to_epoch_millis)]
FeatureValue = float | int | str | bool | None
LabelValue = bool | int | float | str
_Id = Annotated[str, Field(min_length=1, max_length=256)]
_Number = Annotated[float, Field(allow_inf_nan=False)]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    schema_version: Literal[1] = Field(1, description="Event schema version.")


class PredictionEvent(_Event):
    """One prediction made by a model in production."""

    event_id: _Id = Field(description="Unique id of the prediction; labels refer to it.")
    model_id: _Id = Field(description="Which model made the prediction.")
    model_version: _Id | None = Field(None, description="Version of the model, if known.")
    timestamp: EpochMillis = Field(
        description="Event time: epoch milliseconds or ISO-8601 with zone; stored as ms."
    )
    features: dict[str, FeatureValue] = Field(
        description="Feature name to value; null means missing."
    )
    prediction: LabelValue = Field(description="Predicted class label or number.")
    score: _Number | None = Field(None, description="Score of the positive class (binary).")
    scores: dict[str, _Number] | None = Field(None, description="Score per class (multiclass).")
    label: LabelValue | None = Field(None, description="Ground truth, when known at once.")
    latency_ms: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = Field(
        None, description="Time the model took, in milliseconds."
    )
    metadata: dict[str, str | int | float | bool | None] | None = Field(
        None,
        description="Free-form context; segments can split a model by one of its keys "
        "(metadata.<key>).",
    )

    _non_finite: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="after")
    def _one_kind_of_score(self) -> PredictionEvent:
        if self.score is not None and self.scores is not None:
            raise PydanticCustomError(
                "score_and_scores", "send either score (binary) or scores (per class), not both"
            )
        return self

    @property
    def non_finite_features(self) -> tuple[str, ...]:
        """Features that arrived as NaN or Infinity and are treated as missing."""
        private = self.__pydantic_private__  # direct: avoids pydantic's slow __getattr__
        return private["_non_finite"] if private else ()


class LabelEvent(_Event):
    """The ground truth for an earlier prediction, joined to it by ``event_id``."""

    event_id: _Id = Field(description="event_id of the prediction this label belongs to.")
    model_id: _Id = Field(description="Model that made the prediction.")
    timestamp: EpochMillis = Field(description="When the label became known.")
    label: LabelValue = Field(description="Ground truth: class label or number.")


class PredictionLike(Protocol):
    """What is read of a prediction event (a ``PredictionEvent``, or any object like it)."""

    @property
    def event_id(self) -> str: ...
    @property
    def model_id(self) -> str: ...
    @property
    def model_version(self) -> str | None: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def features(self) -> dict[str, FeatureValue]: ...
    @property
    def prediction(self) -> LabelValue: ...
    @property
    def score(self) -> float | None: ...
    @property
    def scores(self) -> dict[str, float] | None: ...
    @property
    def label(self) -> LabelValue | None: ...
    @property
    def latency_ms(self) -> float | None: ...
    @property
    def non_finite_features(self) -> tuple[str, ...]: ...
