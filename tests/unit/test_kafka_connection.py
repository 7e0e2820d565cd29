"""aiokafka keyword arguments from settings (security protocols, TLS material) and our
producers' partitioner."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from stream_monitor.config.settings import KafkaSettings
from stream_monitor.kafka import client_kwargs
from stream_monitor.kafka.partitioner import KeyPartitioner


def test_plaintext() -> None:
    kwargs = client_kwargs(KafkaSettings(bootstrap_servers="a:1,b:2", request_timeout=2.5))
    assert kwargs == {
        "bootstrap_servers": "a:1,b:2",
        "client_id": "stream-monitor",
        "security_protocol": "PLAINTEXT",
        "request_timeout_ms": 2500,
    }


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext(mechanism: str) -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism=mechanism,
        sasl_username="u",
        sasl_password=SecretStr("p"),
    )
    kwargs = client_kwargs(kafka)
    assert (kwargs["sasl_mechanism"], kwargs["sasl_plain_username"]) == (mechanism, "u")
    assert kwargs["sasl_plain_password"] == "p"
    assert "ssl_context" not in kwargs


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "client.key", folder / "client.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=stream-monitor-test",
        ],
        check=True,
        capture_output=True,
    )
    return cert, cert, key  # the self-signed cert doubles as its own CA


def test_sasl_ssl_with_client_certificate(tls_files: tuple[Path, Path, Path]) -> None:
    ca, cert, key = tls_files
    kafka = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="u",
        sasl_password=SecretStr("p"),
        ssl_cafile=ca,
        ssl_certfile=cert,
        ssl_keyfile=key,
        ssl_check_hostname=False,
    )
    context = client_kwargs(kafka)["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname is False
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert len(context.get_ca_certs()) == 1


def test_ssl_with_system_trust_store() -> None:
    context = client_kwargs(KafkaSettings(security_protocol="SSL"))["ssl_context"]
    assert context.check_hostname is True
    assert context.verify_mode == ssl.CERT_REQUIRED


def test_wrong_key_password_fails_clearly(tls_files: tuple[Path, Path, Path]) -> None:
    _, cert, _ = tls_files
    kafka = KafkaSettings(
        security_protocol="SSL",
        ssl_certfile=cert,
        ssl_keyfile=cert,  # a cert is not a key
        ssl_key_password=SecretStr("nope"),
    )
    with pytest.raises(ssl.SSLError):
        client_kwargs(kafka)


@given(
    key=st.binary(max_size=200),
    partitions=st.lists(st.integers(0, 1_000), min_size=1, max_size=64, unique=True),
)
def test_keyed_records_land_where_aiokafkas_default_partitioner_puts_them(
    key: bytes, partitions: list[int]
) -> None:
    ordered = sorted(partitions)
    assert KeyPartitioner()(key, ordered, ordered[:1]) == DefaultPartitioner()(
        key, ordered, ordered[:1]
    )


def test_unkeyed_records_go_to_an_available_partition_else_to_any() -> None:
    partitioner = KeyPartitioner(seed=7)
    chosen = {partitioner(None, [0, 1, 2, 3], [2, 3]) for _ in range(200)}
    assert chosen == {2, 3}
    assert {partitioner(None, [0, 1], []) for _ in range(200)} == {0, 1}
