"""`stream-monitor demo` (what `make demo` runs): embedded broker, drift, alerts, dashboard."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).parents[2]


def drift_in_charts(url: str) -> bool:
    """The dashboard's data for the charts shows the simulated drift (psi above 0.2)."""
    try:
        detail = httpx.get(f"{url}api/models/model-0", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return False
    return any(
        (w.get("drift", {}).get("account_age_days") or {}).get("psi", 0) > 0.2
        for w in detail.get("windows", [])
    )


def test_demo_shows_drift_alerts_dashboard_and_stops_everything(tmp_path: Path) -> None:
    config = tmp_path / "demo.yaml"
    config.write_text(
        (ROOT / "config" / "demo.yaml")
        .read_text()
        .replace(".demo/alerts.jsonl", str(tmp_path / "alerts.jsonl"))
    )
    process = subprocess.Popen(
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
            "--dashboard-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
    )
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    url = None
    drift_seen = False
    deadline = time.monotonic() + 100
    while process.poll() is None and time.monotonic() < deadline:
        if url is None:
            found = re.search(r"dashboard: (http://127\.0\.0\.1:\d+/)", "".join(lines))
            url = found.group(1) if found else None
        elif not drift_seen:
            drift_seen = drift_in_charts(url)
        time.sleep(0.5)
    process.wait(30)
    reader.join(10)
    process.stdout.close()
    output = "".join(lines)
    assert process.returncode == 0, output
    assert url is not None, output
    assert drift_seen, "the dashboard never showed the drift of account_age_days"
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
