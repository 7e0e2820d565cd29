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


DOCKERFILE = Path(__file__).parents[2] / "Dockerfile"


def test_the_image_is_multi_stage_non_root_with_a_health_check_and_compose_builds_it() -> None:
    lines = [
        line.strip()
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2
    assert stages[0].endswith(" AS build")
    assert any(line.startswith("COPY --from=build /wheels") for line in lines)
    final = lines[lines.index(stages[1]) :]
    assert "maturin" not in " ".join(final)  # no build tools in the image that runs
    users = [line for line in final if line.startswith("USER ")]
    assert users
    assert users[-1] != "USER root"
    [health] = [line for line in final if line.startswith("HEALTHCHECK")]
    assert "/healthz" in " ".join(lines[lines.index(health) :][:2])
    assert final[-2:] == ['ENTRYPOINT ["stream-monitor"]', 'CMD ["run"]']
    monitor = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]["monitor"]
    assert monitor["build"] == "."
    assert monitor["command"] == ["run"]
    assert monitor["environment"]["STREAM_MONITOR_CONFIG"].startswith("/config/")
    assert (COMPOSE.parent / "config" / "monitor.yaml").exists()


def test_compose_keeps_history_in_postgres_for_the_dashboard() -> None:
    from stream_monitor.config import load_settings

    services = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    store, dashboard = services["store"], services["dashboard"]
    assert store["command"] == ["store"]
    assert dashboard["command"] == ["dashboard"]
    assert store["depends_on"]["postgres"]["condition"] == "service_healthy"
    url = store["environment"]["STREAM_MONITOR_HISTORY__DATABASE"]
    assert url == dashboard["environment"]["STREAM_MONITOR_HISTORY__DATABASE"]
    postgres = services["postgres"]["environment"]
    assert url.startswith(f"postgresql://{postgres['POSTGRES_USER']}:")
    assert url.endswith(f"@postgres:5432/{postgres['POSTGRES_DB']}")
    # The dashboard's environment is a valid configuration (it binds off loopback with a token).
    env = dashboard["environment"]
    settings = load_settings(
        None,
        {
            "http": {
                "host": env["STREAM_MONITOR_HTTP__HOST"],
                "auth_token": env["STREAM_MONITOR_HTTP__AUTH_TOKEN"],
            },
            "history": {"database": url},
        },
    )
    assert settings.history.database is not None
