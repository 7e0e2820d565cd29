"""Alert sink specs: where alerts go, chosen by ``type``, each with routing filters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = [
    "AlertmanagerSinkSpec",
    "FileSinkSpec",
    "KafkaSinkSpec",
    "LogSinkSpec",
    "SinkSpec",
    "WebhookSinkSpec",
]

Severity = Literal["info", "warning", "critical"]


class _SinkBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: str | None = Field(None, description="Name in logs and metrics (default: the type).")
    min_severity: Severity = Field("info", description="Only alerts at least this severe.")
    models: tuple[str, ...] = Field(("*",), description="Model id globs to forward.")
    kinds: tuple[str, ...] = Field((), description="Alert kinds to forward (empty: all).")
    retries: int = Field(3, ge=0, le=20, description="Retries after a failed delivery.")
    backoff: float = Field(0.5, gt=0, le=60, description="First retry delay, doubled each time.")
    queue_size: int = Field(1000, ge=1, description="Alerts waiting for this sink at most.")


class KafkaSinkSpec(_SinkBase):
    """Alerts to a Kafka topic, keyed by dedup_key."""

    type: Literal["kafka"] = "kafka"
    topic: str | None = Field(None, description="Topic (default: topics.alerts).")


class LogSinkSpec(_SinkBase):
    """Alerts as structured log lines."""

    type: Literal["log"] = "log"


class FileSinkSpec(_SinkBase):
    """Alerts appended to a JSONL file."""

    type: Literal["file"] = "file"
    path: Path = Field(description="JSONL file to append to.")


class WebhookSinkSpec(_SinkBase):
    """Alerts POSTed as JSON: generic, Slack or PagerDuty Events v2 shapes."""

    type: Literal["webhook"] = "webhook"
    url: str = Field(description="Endpoint to POST to.")
    format: Literal["generic", "slack", "pagerduty"] = Field("generic", description="Payload.")
    token: SecretStr | None = Field(None, description="Bearer token sent in Authorization.")
    routing_key: SecretStr | None = Field(None, description="PagerDuty integration key.")
    timeout: float = Field(5.0, gt=0, le=120, description="Seconds per request.")
    breaker_failures: int = Field(
        5, ge=1, description="Consecutive failures that open the circuit breaker."
    )
    breaker_reset: float = Field(
        30.0, gt=0, description="Seconds the breaker stays open before trying again."
    )


class AlertmanagerSinkSpec(_SinkBase):
    """Alerts posted to Prometheus Alertmanager's API (``/api/v2/alerts``)."""

    type: Literal["alertmanager"] = "alertmanager"
    url: str = Field(description="Alertmanager's base URL, e.g. http://alertmanager:9093.")
    token: SecretStr | None = Field(None, description="Bearer token sent in Authorization.")
    timeout: float = Field(5.0, gt=0, le=120, description="Seconds per request.")
    repost_interval: float = Field(
        60.0,
        gt=0,
        description="Seconds between re-posts of the alerts still firing; keep it below "
        "Alertmanager's resolve_timeout (5 min by default), which resolves alerts not re-sent.",
    )
    generator_url: str | None = Field(
        None, description="The dashboard's URL, for each alert's generatorURL (with ?model=)."
    )


SinkSpec = Annotated[
    KafkaSinkSpec | LogSinkSpec | FileSinkSpec | WebhookSinkSpec | AlertmanagerSinkSpec,
    Field(discriminator="type"),
]
