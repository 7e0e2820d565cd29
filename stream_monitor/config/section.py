"""What every settings section shares: frozen, strict about unknown keys, values never echoed in
errors (they may be secrets), and the custom errors their validators raise."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticCustomError

__all__ = ["Section", "custom_error"]


class Section(BaseModel):
    """A settings section: frozen, unknown keys refused, input never shown in errors."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", hide_input_in_errors=True, validate_default=True
    )


def custom_error(kind: str, message: str, **ctx: Any) -> PydanticCustomError:
    """A validation error of ``kind`` whose ``message`` may name ``ctx``'s values."""
    return PydanticCustomError(kind, message, ctx or None)
