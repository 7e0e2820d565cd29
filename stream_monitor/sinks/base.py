"""The sink interface: one small async contract every alert destination implements."""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod

import httpx
from pydantic import SecretStr

from stream_monitor.config.sinks import SinkSpec
from stream_monitor.events.alerts import AlertEvent

__all__ = ["Sink", "SinkError", "json_client"]

_RANK = {"info": 0, "warning": 1, "critical": 2}


def json_client(
    token: SecretStr | None, timeout: float, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """An HTTP client for a sink that posts JSON, with the bearer ``token`` when there is one."""
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token.get_secret_value()}"
    return httpx.AsyncClient(timeout=timeout, headers=headers, transport=transport)


class SinkError(Exception):
    """A delivery failed; the bus retries it."""


class Sink(ABC):
    """An alert destination. ``publish`` raises on failure; the bus retries and counts."""

    #: True when the sink writes to Kafka and can join the runtime's transactions.
    transactional = False

    def __init__(self, spec: SinkSpec) -> None:
        self.spec = spec
        self.name: str = spec.name or spec.type
        self.min_rank = _RANK[spec.min_severity]
        self.models = spec.models
        self.kinds = spec.kinds

    def accepts(self, alert: AlertEvent) -> bool:
        """Routing filters: minimum severity, model glob, alert kind."""
        if _RANK[alert.severity] < self.min_rank:
            return False
        if self.kinds and alert.kind not in self.kinds:
            return False
        return any(fnmatch.fnmatchcase(alert.model_id, pattern) for pattern in self.models)

    @abstractmethod
    async def publish(self, alert: AlertEvent) -> None:
        """Deliver one alert, or raise."""

    async def flush(self) -> None:  # noqa: B027 - optional hook
        """Make delivered alerts durable (default: nothing to do)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""
