"""``stream-monitor schema KIND``: JSON Schemas of the events, for producers in any language."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer
from pydantic import BaseModel

from stream_monitor.events import AlertEvent, LabelEvent, PredictionEvent, WindowSummary

__all__ = ["SchemaKind", "schema"]


class SchemaKind(StrEnum):
    """Event kinds with a published schema."""

    prediction = "prediction"
    label = "label"
    alert = "alert"
    summary = "summary"


_MODELS: dict[SchemaKind, type[BaseModel]] = {
    SchemaKind.prediction: PredictionEvent,
    SchemaKind.label: LabelEvent,
    SchemaKind.alert: AlertEvent,
    SchemaKind.summary: WindowSummary,
}


def schema(kind: Annotated[SchemaKind, typer.Argument(help="Which event.")]) -> None:
    """Print the JSON Schema of an event kind."""
    document = _MODELS[kind].model_json_schema(mode="validation")
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    typer.echo(json.dumps(document, indent=2))
