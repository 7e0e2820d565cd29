"""The exception tree of stream-monitor, drawn once.

    StreamMonitorError
    ├── ConfigError              configuration is invalid (lists every problem)
    ├── EventValidationError     an event could not be decoded or validated
    └── BrokerError              a development broker could not be started or stopped

Every message names the field (or thing), the offending value and what to do about it.
Values of secret fields are never put into a message.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BatchFailedError",
    "BrokerError",
    "ConfigError",
    "ConfigProblem",
    "EventValidationError",
    "MonitorError",
    "StreamMonitorError",
    "error_location",
]


class StreamMonitorError(Exception):
    """Base class of every error raised on purpose by stream-monitor."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem found in a configuration: where, what value, and why."""

    path: str
    value: str
    reason: str

    def __str__(self) -> str:
        if self.value:
            return f"{self.path}: {self.value} {self.reason}"
        return f"{self.path}: {self.reason}"


class ConfigError(StreamMonitorError):
    """The configuration is invalid; ``problems`` lists every problem found, not only the first."""

    def __init__(self, problems: list[ConfigProblem], source: str = "configuration") -> None:
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{source}: {len(problems)} {noun}\n{lines}")


class EventValidationError(StreamMonitorError):
    """An event failed to decode or validate.

    ``field`` is the dotted path of the offending field (``"<event>"`` for the event as a
    whole), ``value`` a short, safe rendering of the offending value, ``reason`` what is wrong
    and what to do. The streaming runtime copies these into dead-letter headers.
    """

    def __init__(self, field: str, value: str, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}: {value} {reason}" if value else f"{field}: {reason}")


class MonitorError(EventValidationError):
    """An event made the monitor itself raise (a bug, not bad input): it is dead-lettered with
    the class of what was raised, and its partition goes on without it."""

    def __init__(self, cause: BaseException) -> None:
        self.cause_class = type(cause).__name__
        super().__init__(
            "<monitor>",
            "",
            f"the monitor raised {self.cause_class}: {str(cause)[:500]}; this is a bug of "
            "stream-monitor, please report it with this event",
        )


class BatchFailedError(StreamMonitorError):
    """A batch made the monitor raise; ``index`` is the failing record's when known."""

    def __init__(self, failure: MonitorError, index: int | None = None) -> None:
        super().__init__(failure.reason)
        self.failure = failure
        self.index = index


class BrokerError(StreamMonitorError):
    """A development broker could not be fetched, started or stopped."""


_UNION_TAGS = frozenset({"float", "int", "str", "bool", "none", "list", "dict", "bytes"})


def error_location(loc: tuple[int | str, ...]) -> str:
    """Dotted path of a pydantic error location, without the union-member tags pydantic adds.

    ``("features", "x", "float")`` becomes ``"features.x"``.
    """
    parts = [str(part) for part in loc]
    while parts and (parts[-1] in _UNION_TAGS or "[" in parts[-1]):
        parts.pop()
    return ".".join(parts)
