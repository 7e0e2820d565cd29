"""The ``kafka`` settings section: the brokers, the consumer group and the connection's security
(TLS and SASL), shared by the worker, the tools and the emitter SDK."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from stream_monitor.config.section import Section, custom_error

__all__ = ["KafkaSettings", "SaslMechanism", "SecurityProtocol"]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(Section):
    """Connection to the Kafka cluster, including TLS and SASL."""

    bootstrap_servers: str = Field(
        "localhost:9092", description="Comma-separated host:port list of brokers."
    )
    group_id: str = Field(
        "stream-monitor", min_length=1, description="Consumer group of the monitor workers."
    )
    client_id: str = Field("stream-monitor", min_length=1, description="Client id sent to brokers.")
    security_protocol: SecurityProtocol = Field("PLAINTEXT", description="Kafka security protocol.")
    sasl_mechanism: SaslMechanism | None = Field(
        None, description="SASL mechanism; required with SASL_PLAINTEXT and SASL_SSL."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password.")
    ssl_cafile: Path | None = Field(None, description="CA bundle to verify brokers (PEM).")
    ssl_certfile: Path | None = Field(None, description="Client certificate (PEM) for mTLS.")
    ssl_keyfile: Path | None = Field(None, description="Client private key (PEM) for mTLS.")
    ssl_key_password: SecretStr | None = Field(
        None, description="Password of the client private key."
    )
    ssl_check_hostname: bool = Field(True, description="Verify the broker host name.")
    request_timeout: float = Field(
        30.0, gt=0, allow_inf_nan=False, description="Seconds to wait for a broker response."
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _hosts(cls, value: str) -> str:
        for entry in value.split(","):
            host, sep, port = entry.strip().rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise custom_error(
                    "bad_bootstrap",
                    "must be a comma-separated list of host:port (e.g. 127.0.0.1:9092)",
                )
        return value

    @field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile")
    @classmethod
    def _file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise custom_error("file_missing", "does not exist or is not a file")
        return value

    @field_validator("sasl_mechanism")
    @classmethod
    def _mechanism(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and str(info.data.get("security_protocol", "")).startswith("SASL"):
            raise custom_error(
                "sasl_mechanism_required",
                "is required with security_protocol {protocol}: "
                "set PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                protocol=info.data["security_protocol"],
            )
        return value

    @field_validator("sasl_username")
    @classmethod
    def _username(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value and str(info.data.get("security_protocol", "")).startswith("SASL"):
            raise custom_error("sasl_username_required", "is required with SASL security protocols")
        return value

    @field_validator("sasl_password")
    @classmethod
    def _password(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None and str(info.data.get("security_protocol", "")).startswith("SASL"):
            raise custom_error("sasl_password_required", "is required with SASL security protocols")
        return value

    @field_validator("ssl_keyfile")
    @classmethod
    def _key_with_cert(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if (value is None) != (info.data.get("ssl_certfile") is None) and "ssl_certfile" in (
            info.data
        ):
            raise custom_error(
                "client_cert_pair", "must be set together with ssl_certfile (client certificates)"
            )
        return value
