"""docker-compose.yml parses and wires the monitor to the Kafka service by the public names."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).parents[2] / "docker-compose.yml"


def test_compose_file_structure() -> None:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    kafka = document["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    monitor = document["services"]["monitor"]
    env = monitor["environment"]
    assert env["STREAM_MONITOR_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:29092"
    for name in ("PREDICTIONS", "LABELS", "ALERTS"):
        assert f"STREAM_MONITOR_TOPICS__{name}" in env
    assert monitor["depends_on"]["kafka"]["condition"] == "service_healthy"
    listeners = kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert "INTERNAL://kafka:29092" in listeners


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_parses() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
