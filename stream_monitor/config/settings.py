"""The service settings: one frozen model, loaded from defaults < file < environment < flags.

Environment variables use the prefix ``STREAM_MONITOR_`` and ``__`` for nesting, for example
``STREAM_MONITOR_KAFKA__BOOTSTRAP_SERVERS``. ``STREAM_MONITOR_ENV`` selects a profile (``dev``
or ``prod``) that fills the settings left unset: console logs and topic auto-creation in dev,
JSON logs and no auto-creation in prod.
"""

from __future__ import annotations

import copy
from contextvars import ContextVar
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from stream_monitor.config.kafka_settings import KafkaSettings
from stream_monitor.config.models import ModelSpec
from stream_monitor.config.section import Section, custom_error
from stream_monitor.config.sinks import KafkaSinkSpec, LogSinkSpec, SinkSpec

__all__ = [
    "ENV_PREFIX",
    "HistorySettings",
    "HttpSettings",
    "KafkaSettings",
    "LimitsSettings",
    "LoggingSettings",
    "MonitoringSettings",
    "ProcessingSettings",
    "ReplaySettings",
    "Settings",
    "SourceSpec",
    "StateSettings",
    "TopicsSettings",
]

ENV_PREFIX = "STREAM_MONITOR_"

_PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "dev": {"logging": {"format": "console"}, "topics": {"auto_create": True}},
    "prod": {"logging": {"format": "json"}, "topics": {"auto_create": False}},
}


class TopicsSettings(Section):
    """Topic names and how topics are created. Internal topics derive from the group id."""

    predictions: str = Field("predictions", min_length=1, description="Prediction events (input).")
    labels: str = Field("labels", min_length=1, description="Label events (input).")
    alerts: str = Field("alerts", min_length=1, description="Alert events (output).")
    metrics: str = Field("", description="Window summaries (output). Default: <group_id>-metrics.")
    dead_letters: str = Field(
        "", description="Invalid events with error headers. Default: <group_id>-dead-letters."
    )
    state: str = Field("", description="Compacted checkpoint topic. Default: <group_id>-state.")
    auto_create: bool = Field(
        True, description="Create missing topics at startup. Profile default: dev true, prod false."
    )
    partitions: int = Field(6, ge=1, le=10_000, description="Partitions for created topics.")
    replication_factor: int = Field(
        1, ge=1, le=32, description="Replication factor for created topics."
    )


class ProcessingSettings(Section):
    """Delivery guarantees and batching of the streaming runtime."""

    guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once",
        description="Processing guarantee; exactly_once needs a broker with Kafka transactions.",
    )
    commit_interval: float = Field(
        1.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds between offset commits (at_least_once: of the offsets the latest "
        "checkpoint covers) and between the transactions of a partition (exactly_once; each "
        "carries its checkpoint).",
    )
    checkpoint_interval: float = Field(
        10.0,
        gt=0,
        allow_inf_nan=False,
        description="at_least_once: seconds between state checkpoints. Offsets are committed "
        "only as far as a checkpoint covers them, so a crash replays at most this much (with "
        "the same alert ids) and committed offsets trail processing by as much.",
    )
    batch_max_records: int = Field(
        2000, ge=1, le=1_000_000, description="Most records taken from Kafka per batch."
    )
    max_task_idle: float = Field(
        0.0,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds a partition's predictions wait for its labels topic (or the "
        "reverse) when that has nothing fetched and nothing more in the broker. Both topics are "
        "merged by record timestamp; with 0 the wait lasts only while the broker holds more of "
        "the other topic (the order is then the input's own whenever the worker is behind). "
        "More makes the order exact at the head of a live stream too, at that cost in latency.",
    )
    shutdown_timeout: float = Field(
        10.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds from SIGTERM or SIGINT until the worker has exited, whether or not "
        "the broker answers: it finishes its batch, flushes, checkpoints and commits within "
        "them, or exits with code 3 and logs the partitions and offsets it could not commit "
        "(replayed on restart). Keep it below the orchestrator's grace period.",
    )


class LimitsSettings(Section):
    """Limits applied to incoming events; events beyond them go to the dead-letter topic."""

    max_event_bytes: int = Field(
        65_536, ge=256, le=16_777_216, description="Largest accepted event in bytes."
    )
    max_features: int = Field(1_000, ge=1, description="Most features one event may carry.")
    max_string_length: int = Field(
        1_024, ge=8, description="Longest accepted string value (ids, categories, labels)."
    )
    non_finite_features: Literal["missing", "reject"] = Field(
        "missing",
        description="NaN/Infinity in a feature: treated as missing (and counted) or rejected.",
    )


class LoggingSettings(Section):
    """Structured logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["console", "json"] = Field(
        "console", description="Renderer. Profile default: dev console, prod json."
    )


class MonitoringSettings(Section):
    """Monitoring defaults that apply to every model."""

    unknown_models: Literal["monitor", "reject"] = Field(
        "monitor",
        description="Events of models not listed under models: monitor with defaults or reject.",
    )
    max_unlisted_models: int = Field(
        2_000,
        ge=0,
        description="Models not listed under models monitored per partition at most (each "
        "takes about 100 KB, in warm-up or not); events and labels of further ones go to the "
        "dead-letter topic. Bounds the memory a stream of made-up model ids can take.",
    )
    default: ModelSpec = Field(
        default_factory=ModelSpec,
        description="Spec used for models that are not listed.",
    )


class StateSettings(Section):
    """Monitor state snapshots."""

    signing_key: SecretStr | None = Field(
        None, description="HMAC key that signs snapshots; unsigned when unset."
    )


_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class HttpSettings(Section):
    """HTTP: the worker's /metrics, /healthz and /readyz, and the dashboard."""

    enabled: bool = Field(True, description="Serve the worker endpoints.")
    host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address the worker endpoints and the dashboard bind to. Anything but "
        "loopback requires http.auth_token.",
    )
    port: int = Field(9400, ge=0, le=65535, description="Worker endpoints port (0: any free port).")
    dashboard_port: int = Field(8050, ge=0, le=65535, description="Dashboard port.")
    auth_token: SecretStr | None = Field(
        None,
        description="Bearer token (or basic-auth password, any user name) required on every "
        "request; mandatory when http.host is not loopback.",
    )
    ready_max_lag: int = Field(
        10_000, ge=0, description="/readyz fails while a partition lags more events than this."
    )
    max_series: int = Field(
        5_000,
        ge=1,
        description="Most model x feature drift gauges on /metrics; further ones are counted "
        "in stream_monitor_metric_series_dropped_total instead.",
    )
    dashboard_windows: int = Field(
        500, ge=1, description="Windows per model the dashboard keeps in memory."
    )

    @field_validator("auth_token")
    @classmethod
    def _token_off_loopback(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        host = info.data.get("host")
        if value is None and host is not None and host not in _LOOPBACK:
            raise custom_error(
                "auth_required",
                "is required when http.host is {host} (not loopback): set "
                "STREAM_MONITOR_HTTP__AUTH_TOKEN, or bind to 127.0.0.1",
                host=host,
            )
        if value is not None and len(value.get_secret_value()) < 16:
            raise custom_error("token_too_short", "must be at least 16 characters")
        return value


class HistorySettings(Section):
    """The history store: window summaries and alerts kept in SQLite or PostgreSQL."""

    database: SecretStr | None = Field(
        None,
        description="Database URL: sqlite:///PATH (a file, no server) or "
        "postgresql://USER:PASSWORD@HOST:PORT/DB. `stream-monitor store` writes it and the "
        "dashboard reads its history from it. Kept secret: it may hold a password.",
    )
    retention_days: float = Field(
        90.0,
        ge=0,
        description="Windows and alerts whose window ended longer ago than this are deleted "
        "(0 keeps everything).",
    )

    @field_validator("database")
    @classmethod
    def _known_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return value
        scheme = value.get_secret_value().partition(":")[0]
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise custom_error(
                "database_scheme",
                "has the scheme '{scheme}': use sqlite:///PATH or postgresql://USER@HOST/DB",
                scheme=scheme,
            )
        return value


class ReplaySettings(Section):
    """How `stream-monitor replay` reads CSV files: which column holds which event field.

    Columns not named here (nor in ``csv_ignore``) are features.
    """

    csv_event_id: str = Field("event_id", min_length=1, description="Column of event_id.")
    csv_model_id: str = Field("model_id", min_length=1, description="Column of model_id.")
    csv_model_version: str = Field(
        "model_version", min_length=1, description="Column of model_version (optional)."
    )
    csv_timestamp: str = Field(
        "timestamp", min_length=1, description="Column of the event time (epoch ms or ISO-8601)."
    )
    csv_prediction: str = Field("prediction", min_length=1, description="Column of prediction.")
    csv_score: str = Field("score", min_length=1, description="Column of score (optional).")
    csv_label: str = Field("label", min_length=1, description="Column of label (optional).")
    csv_ignore: tuple[str, ...] = Field((), description="Columns that are not features.")


_FILE_DATA: ContextVar[dict[str, Any]] = ContextVar("stream_monitor_file_data", default={})  # noqa: B039


class SourceSpec(Section):
    """A pair of Open Inference Protocol v2 topics (requests and responses) read as predictions.

    Each request is joined with its response by request id (the message's ``id``, else the
    record key, else its ``x-request-id`` header), and each row of the batch becomes a
    prediction event on the predictions topic.
    """

    name: str = Field(
        ...,
        pattern=r"^[A-Za-z0-9._-]+$",
        max_length=100,
        description="Name of the source (its consumer group is <group_id>-source-<name>).",
    )
    kind: Literal["oip"] = Field("oip", description="oip: Open Inference Protocol v2.")
    requests: str = Field(
        ..., min_length=1, description="Topic of the requests (Seldon Core 2: ...model.M.inputs)."
    )
    responses: str = Field(
        ..., min_length=1, description="Topic of the responses (Seldon Core 2: ...model.M.outputs)."
    )
    format: Literal["protobuf", "json"] = Field(
        "protobuf",
        description="protobuf: ModelInferRequest/ModelInferResponse (Seldon Core 2, gRPC form); "
        "json: the REST form.",
    )
    model_id: str | None = Field(
        None, min_length=1, description="Model id of the events. Default: the message's model_name."
    )
    features: list[str] | None = Field(
        None,
        description="Feature names of the input columns. Default: the tensor names (<name>_0, "
        "<name>_1, ... for the columns of one [N, F] tensor).",
    )
    prediction: str | None = Field(
        None,
        description="Output tensor holding the prediction. Default: the first output other than "
        "score (with score alone, the most probable class of its rows).",
    )
    score: str | None = Field(
        None,
        description="Output tensor holding the score (probability of the positive class). "
        "Default: from rows of class probabilities, as ingest does.",
    )
    ttl: float = Field(
        60.0, gt=0, allow_inf_nan=False, description="Seconds a request waits for its response."
    )
    max_pending: int = Field(
        10_000, ge=1, description="Requests and responses waiting for their other half, at most."
    )


class _FileSource(PydanticBaseSettingsSource):
    """Settings read from the config file; sits between defaults and the environment."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return _FILE_DATA.get().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_DATA.get())


def _deep_setdefault(target: dict[str, Any], defaults: dict[str, Any]) -> None:
    for key, value in defaults.items():
        if isinstance(value, dict):
            section = target.get(key)
            if isinstance(section, dict):
                _deep_setdefault(section, value)
            elif section is None:
                target[key] = dict(value)
        else:
            target.setdefault(key, value)


def _default_sinks() -> list[SinkSpec]:
    return [KafkaSinkSpec(), LogSinkSpec()]


class Settings(BaseSettings):
    """Everything the service needs, validated at startup. Frozen once loaded."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
        hide_input_in_errors=True,
        validate_default=True,
    )

    env: Literal["dev", "prod"] = Field("dev", description="Profile selecting defaults.")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicsSettings = Field(default_factory=TopicsSettings)
    processing: ProcessingSettings = Field(default_factory=ProcessingSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    replay: ReplaySettings = Field(default_factory=ReplaySettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    models: dict[str, ModelSpec] = Field(
        default_factory=dict, description="Monitor spec per model_id."
    )
    sources: list[SourceSpec] = Field(
        default_factory=list,
        description="Extra inputs turned into prediction events by `run`: Open Inference "
        "Protocol v2 request/response topic pairs (Seldon Core 2).",
    )
    sinks: list[SinkSpec] = Field(
        default_factory=_default_sinks,
        description="Where alerts go (types: kafka, log, file, webhook), each with filters.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # First wins: CLI flags (init) > environment > config file > defaults.
        return (init_settings, env_settings, _FileSource(settings_cls))

    @model_validator(mode="before")
    @classmethod
    def _apply_profile(cls, data: Any) -> Any:
        """Fill unset settings from the profile and derive internal topic names."""
        if not isinstance(data, dict):
            return data
        data = copy.deepcopy(data)
        profile = _PROFILES.get(str(data.get("env", "dev")), _PROFILES["dev"])
        _deep_setdefault(data, profile)
        group_id = "stream-monitor"
        kafka = data.get("kafka")
        if isinstance(kafka, dict) and isinstance(kafka.get("group_id"), str):
            group_id = kafka["group_id"]
        topics = data.setdefault("topics", {})
        if isinstance(topics, dict):
            for name in ("metrics", "dead_letters", "state"):
                if not topics.get(name):
                    topics[name] = f"{group_id}-{name.replace('_', '-')}"
        return data

    def model_spec(self, model_id: str) -> ModelSpec:
        """The spec of ``model_id``: its own entry, or the default spec."""
        return self.models.get(model_id, self.monitoring.default)


def _set_file_data(data: dict[str, Any]) -> Any:
    return _FILE_DATA.set(data)


def _reset_file_data(token: Any) -> None:
    _FILE_DATA.reset(token)
