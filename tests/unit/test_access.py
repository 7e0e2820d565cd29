"""How the start-up access check reads a refused connection (pure logic; the refusals
themselves are tested on a real secured broker in tests/integration/test_secured_broker.py)."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from stream_monitor.config import load_settings
from stream_monitor.kafka.access import _connection_problem, check_access

SASL = {
    "kafka": {
        "bootstrap_servers": "127.0.0.1:9",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "monitor",
        "sasl_password": "s3cret-value",
    }
}


def wrapped(cause: BaseException) -> KafkaConnectionError:
    """What aiokafka raises: its own error, with the real one as its cause."""
    error = KafkaConnectionError("Unable to bootstrap")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("cause", "path", "words"),
    [
        (SaslAuthenticationFailed("bad"), "kafka.sasl_password", "'monitor'"),
        (UnsupportedSaslMechanismError("no"), "kafka.sasl_mechanism", "not enabled"),
        (ssl.SSLError(1, "wrong version number"), "kafka.security_protocol", "TLS"),
    ],
)
def test_each_refusal_names_its_setting_and_never_the_password(
    cause: BaseException, path: str, words: str
) -> None:
    kafka = load_settings(None, SASL).kafka
    problem = _connection_problem(kafka, "127.0.0.1:9", wrapped(cause))
    assert problem.path == path
    assert words in str(problem)
    assert "s3cret-value" not in str(problem)


def test_an_unknown_ca_names_the_cafile_setting() -> None:
    kafka = load_settings(None, SASL).kafka
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate in certificate chain"
    problem = _connection_problem(kafka, "127.0.0.1:9", error)
    assert (problem.path, problem.value) == ("kafka.ssl_cafile", "(the system's CAs)")
    assert "self-signed" in problem.reason


def test_other_connection_failures_are_not_access_problems() -> None:
    kafka = load_settings(None, SASL).kafka
    refused = wrapped(ConnectionRefusedError(111, "refused"))
    with pytest.raises(KafkaConnectionError):
        _connection_problem(kafka, "127.0.0.1:9", refused)


def test_an_unreachable_broker_passes_the_check_quietly() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kafka = load_settings(None, {"kafka": {"bootstrap_servers": f"127.0.0.1:{port}"}}).kafka
    asyncio.run(check_access(kafka, {"topics.alerts": "alerts"}, group="g"))
