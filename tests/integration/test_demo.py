"""`stream-monitor demo` (what `make demo` runs): embedded broker, drift, alerts in the terminal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_demo_shows_drift_alerts_and_stops_everything(tmp_path: Path) -> None:
    config = tmp_path / "demo.yaml"
    config.write_text(
        (ROOT / "config" / "demo.yaml")
        .read_text()
        .replace(".demo/alerts.jsonl", str(tmp_path / "alerts.jsonl"))
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stream_monitor",
            "demo",
            "--port",
            "19392",
            "--config",
            str(config),
            "--events",
            "9000",
            "--rate",
            "1500",
            "--duration",
            "25",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "no transactions: the demo runs at_least_once" in output
    assert "FIRING" in output
    assert "drift.psi on account_age_days" in output
    assert "demo stopped" in output
    assert (tmp_path / "alerts.jsonl").read_text().count('"status":"firing"') >= 1
    status = subprocess.run(
        [sys.executable, "-m", "stream_monitor", "broker", "status"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "19392" not in status.stdout  # the broker it started is gone
