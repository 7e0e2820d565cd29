"""Keyword arguments for aiokafka clients, built from :class:`KafkaSettings`.

The only place that turns our settings (seconds, ``SecretStr``) into aiokafka's names and units.
"""

from __future__ import annotations

import ssl
from typing import Any

from stream_monitor.config.settings import KafkaSettings

__all__ = ["client_kwargs", "ssl_context"]


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """A TLS context verifying brokers with ``ssl_cafile`` and presenting a client certificate."""
    context = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    context.check_hostname = kafka.ssl_check_hostname
    if kafka.ssl_certfile is not None and kafka.ssl_keyfile is not None:
        password = kafka.ssl_key_password.get_secret_value() if kafka.ssl_key_password else None
        context.load_cert_chain(str(kafka.ssl_certfile), str(kafka.ssl_keyfile), password)
    return context


def client_kwargs(kafka: KafkaSettings) -> dict[str, Any]:
    """Connection arguments shared by aiokafka producers, consumers and admin clients."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
        "request_timeout_ms": int(kafka.request_timeout * 1000),
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = ssl_context(kafka)
    if kafka.security_protocol.startswith("SASL"):
        kwargs["sasl_mechanism"] = kafka.sasl_mechanism
        kwargs["sasl_plain_username"] = kafka.sasl_username
        kwargs["sasl_plain_password"] = (
            kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        )
    return kwargs
