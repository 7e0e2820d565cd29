"""The streaming commands as a user runs them: run (SIGTERM), simulate, tail."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import orjson
import pytest
from typer.testing import CliRunner

from stream_monitor.cli import app
from stream_monitor.runtime.topics import ensure_topics

from .runtime_helpers import isolated_settings, read_all

runner = CliRunner()


def env_for(settings: object) -> dict[str, str]:
    s = settings  # type: ignore[assignment]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_MONITOR_")}
    env.update(
        {
            "STREAM_MONITOR_KAFKA__BOOTSTRAP_SERVERS": s.kafka.bootstrap_servers,  # type: ignore[attr-defined]
            "STREAM_MONITOR_KAFKA__GROUP_ID": s.kafka.group_id,  # type: ignore[attr-defined]
            "STREAM_MONITOR_TOPICS__PREDICTIONS": s.topics.predictions,  # type: ignore[attr-defined]
            "STREAM_MONITOR_TOPICS__LABELS": s.topics.labels,  # type: ignore[attr-defined]
            "STREAM_MONITOR_TOPICS__ALERTS": s.topics.alerts,  # type: ignore[attr-defined]
            "STREAM_MONITOR_TOPICS__PARTITIONS": "2",
            "STREAM_MONITOR_ENV": "prod",
            "STREAM_MONITOR_TOPICS__AUTO_CREATE": "true",
            "STREAM_MONITOR_PROCESSING__CHECKPOINT_INTERVAL": "1",
            "STREAM_MONITOR_HTTP__PORT": "0",
        }
    )
    return env


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_stops_gracefully_on_signals(kafka_bootstrap: str, sig: signal.Signals) -> None:
    settings = isolated_settings(kafka_bootstrap)
    env = env_for(settings)
    simulate = runner.invoke(
        app,
        [
            "simulate",
            "--events",
            "2000",
            "--models",
            "2",
            "--bootstrap-servers",
            kafka_bootstrap,
            "--set",
            f"topics.predictions={settings.topics.predictions}",
            "--set",
            f"topics.labels={settings.topics.labels}",
            "--set",
            "topics.partitions=2",
            "--set",
            f"kafka.group_id={settings.kafka.group_id}",
        ],
    )
    assert simulate.exit_code == 0, simulate.output
    assert "sent 2000 predictions" in simulate.output
    process = subprocess.Popen(
        [sys.executable, "-m", "stream_monitor", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        lines: list[str] = []
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "partitions assigned" in line:
                break
        time.sleep(3)  # let it process the backlog
        process.send_signal(sig)
        started = time.monotonic()
        code = process.wait(timeout=15)
        elapsed = time.monotonic() - started
        rest = process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert code == 0, "".join(lines) + rest
    assert elapsed < 10
    stopped = json.loads(next(line for line in rest.splitlines() if "worker stopped" in line))
    assert stopped["consumed"] == 4000  # 2,000 predictions and their 2,000 labels
    assert stopped["checkpoints"] >= 1


def test_tail_filters_and_json(kafka_bootstrap: str) -> None:
    import asyncio

    from .runtime_helpers import produce

    settings = isolated_settings(kafka_bootstrap)
    alerts = [
        {
            "alert_id": f"a{i}",
            "dedup_key": "k",
            "status": status,
            "severity": severity,
            "model_id": model,
            "kind": "drift",
            "rule": "drift.psi",
            "statistic": "psi",
            "summary": f"{model} {severity} {status}",
        }
        for i, (model, severity, status) in enumerate(
            [
                ("fraud", "critical", "firing"),
                ("churn", "warning", "firing"),
                ("fraud", "critical", "resolved"),
            ]
        )
    ]
    asyncio.run(ensure_topics(settings))
    asyncio.run(
        produce(kafka_bootstrap, settings.topics.alerts, [(b"k", orjson.dumps(a)) for a in alerts])
    )
    base = [
        "tail",
        "--bootstrap-servers",
        kafka_bootstrap,
        "--set",
        f"topics.alerts={settings.topics.alerts}",
        "--from-beginning",
    ]
    result = runner.invoke(app, [*base, "--json", "--model", "fraud", "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["alert_id"] for line in result.stdout.splitlines()] == ["a0", "a2"]
    result = runner.invoke(app, [*base, "--severity", "warning", "--limit", "1"])
    assert "FIRING   warning  churn warning firing" in result.stdout
    assert asyncio.run(read_all(kafka_bootstrap, settings.topics.alerts))


def test_alert_lines_escape_event_text() -> None:
    from stream_monitor.cli.stream_cmd import alert_line

    line = alert_line(
        {
            "status": "firing",
            "severity": "critical",
            "summary": "[bold]<script>x</script>[/bold] model",
        }
    )
    assert line.startswith("[bold red]FIRING   critical[/] ")
    assert "\\[bold]<script>" in line  # shown as text, not interpreted as markup
