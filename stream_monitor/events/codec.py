"""Bytes to validated events and back, with limits and clear errors. Pure, no I/O.

Every failure raises :class:`~stream_monitor.errors.EventValidationError` naming the field, the
value and what to do; nothing else escapes, whatever the bytes.

Non-finite numbers: JSON has no NaN or Infinity, but Python's ``json`` module writes them. In a
feature they follow ``limits.non_finite_features``: ``missing`` (default) turns them into a
missing value and records the feature in ``event.non_finite_features`` for data-quality counts;
``reject`` refuses the event. Anywhere else (score, scores, latency_ms, timestamp) they are
always refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from stream_monitor._native import Batch, decode_batch
from stream_monitor.config.settings import LimitsSettings
from stream_monitor.errors import EventValidationError, error_location
from stream_monitor.events.schemas import LabelEvent, PredictionEvent

__all__ = ["EventCodec", "encode_event"]

_E = TypeVar("_E", bound=BaseModel)
_MAX_VALUE_CHARS = 60
_NON_FINITE_TOKENS = (b"NaN", b"Infinity")


def encode_event(event: BaseModel) -> bytes:
    """Serialise any event to compact JSON bytes (the wire format)."""
    return event.__pydantic_serializer__.to_json(event)


def _render(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 3] + "..."


class EventCodec:
    """Decode and validate events under configured limits."""

    def __init__(self, limits: LimitsSettings | None = None) -> None:
        self.limits = limits or LimitsSettings()

    def decode_batch(self, values: Sequence[bytes | None]) -> Batch:
        """A batch of record values decoded by the native decoder under these limits (GIL
        released); what it cannot judge is left for :meth:`decode_prediction` (``deferred``)."""
        limits = self.limits
        return decode_batch(
            values,
            limits.max_event_bytes,
            limits.max_features,
            limits.max_string_length,
            limits.non_finite_features == "reject",
        )

    def decode_prediction(self, data: bytes | None) -> PredictionEvent:
        """Decode one prediction event, or raise :class:`EventValidationError`."""
        return self._prediction(self._load(data))

    def decode_any(self, data: bytes | None) -> PredictionEvent | LabelEvent:
        """Decode a line of a mixed stream: a label when it has ``label`` but no ``prediction``."""
        raw = self._load(data)
        if "label" in raw and "prediction" not in raw:
            return self._validate(LabelEvent, raw)
        return self._prediction(raw)

    def _prediction(self, raw: dict[str, Any]) -> PredictionEvent:
        non_finite = self._check_features(raw)
        event = self._validate(PredictionEvent, raw)
        if non_finite:
            event._non_finite = non_finite
        return event

    def decode_label(self, data: bytes | None) -> LabelEvent:
        """Decode one label event, or raise :class:`EventValidationError`."""
        raw = self._load(data)
        return self._validate(LabelEvent, raw)

    encode = staticmethod(encode_event)

    def _load(self, data: bytes | None) -> dict[str, Any]:
        if not data:
            raise EventValidationError("<event>", "", "is empty; send a JSON object")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise EventValidationError("<event>", type(data).__name__, "must be bytes")
        if len(data) > self.limits.max_event_bytes:
            raise EventValidationError(
                "<event>",
                f"{len(data)} bytes",
                f"exceeds limits.max_event_bytes ({self.limits.max_event_bytes}); "
                "send fewer or shorter features, or raise the limit",
            )
        try:
            raw = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raw = self._load_non_finite(bytes(data), exc)
        if not isinstance(raw, dict):
            raise EventValidationError(
                "<event>", type(raw).__name__, "must be a JSON object, not a JSON array or scalar"
            )
        self._check_strings(raw)
        return raw

    @staticmethod
    def _load_non_finite(data: bytes, error: orjson.JSONDecodeError) -> Any:
        """Second chance for the NaN/Infinity tokens that Python's json module writes."""
        if any(token in data for token in _NON_FINITE_TOKENS):
            try:
                return json.loads(data)
            except (ValueError, RecursionError):
                pass
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EventValidationError(
                "<event>", f"byte {exc.start}", "is not valid UTF-8; encode events as UTF-8 JSON"
            ) from None
        raise EventValidationError(
            "<event>", "", f"is not valid JSON ({error.msg} at char {error.pos})"
        ) from None

    def _check_strings(self, raw: dict[str, Any]) -> None:
        limit = self.limits.max_string_length
        for key, value in raw.items():
            if isinstance(value, str) and len(value) > limit:
                raise EventValidationError(
                    key,
                    f"{len(value)} characters",
                    f"exceeds limits.max_string_length ({limit}); shorten it or raise the limit",
                )

    def _check_features(self, raw: dict[str, Any]) -> tuple[str, ...]:
        features = raw.get("features")
        if not isinstance(features, dict):
            return ()  # schema validation reports it
        if len(features) > self.limits.max_features:
            raise EventValidationError(
                "features",
                f"{len(features)} features",
                f"exceeds limits.max_features ({self.limits.max_features}); "
                "send fewer features or raise the limit",
            )
        limit = self.limits.max_string_length
        non_finite: list[str] = []
        for name, value in features.items():
            if len(name) > limit:
                raise EventValidationError(
                    "features", _render(name), f"name exceeds limits.max_string_length ({limit})"
                )
            if isinstance(value, str) and len(value) > limit:
                raise EventValidationError(
                    f"features.{name}",
                    f"{len(value)} characters",
                    f"exceeds limits.max_string_length ({limit}); shorten it or raise the limit",
                )
            if isinstance(value, float) and not math.isfinite(value):
                if self.limits.non_finite_features == "reject":
                    raise EventValidationError(
                        f"features.{name}",
                        repr(value),
                        "is not finite; send null for a missing value "
                        "(limits.non_finite_features is reject)",
                    )
                non_finite.append(name)
        for name in non_finite:
            features[name] = None
        return tuple(non_finite)

    @staticmethod
    def _validate(model: type[_E], raw: dict[str, Any]) -> _E:
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            field = error_location(err["loc"]) or "<event>"
            value = "" if err["type"] == "missing" else _render(err.get("input"))
            message = str(err["msg"])
            if err["type"] == "missing":
                reason = "is required"
            elif err["type"] == "extra_forbidden":
                reason = "is not a field of this event; check the spelling (see docs/events.md)"
            elif message[:1].islower():  # our own messages read on from the value
                reason = message
            else:
                reason = f"is invalid: {message[:1].lower()}{message[1:]}"
            raise EventValidationError(field, value, reason) from None
