"""History store at scale: fill it with 1,000,000 windows, then time the dashboard's API on it.

The store is filled through the same ``SqlHistory.write`` that ``stream-monitor store`` uses (pages
of 5,000 window summaries of 12 features each, with their offsets), then a real dashboard (aiohttp,
loopback) serves its page's API from it: the model list, a model's latest windows and a model's
last 24 hours. Figures: fill rate, database size, and p50/p99 of each API call (nearest rank).
The dashboard's topic consumer points at no broker: only the stored history is being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.record import machine, record
from stream_monitor.config import load_settings
from stream_monitor.dashboard import serve
from stream_monitor.history import Page, open_history
from stream_monitor.history.sql import redacted
from stream_monitor.monitor.quantiles import nearest_rank

MINUTE = 60_000
FEATURES = [f"f{i}" for i in range(12)]


def summary(model: str, index: int, end: int) -> dict[str, Any]:
    """A window summary shaped like the worker's (12 features, drift, quality, performance)."""
    x = (index % 97) / 97
    return {
        "model_id": model,
        "model_version": "v1",
        "window_kind": "tumbling",
        "window_index": index,
        "window_start": end - MINUTE,
        "window_end": end,
        "revision": 0,
        "sample_size": 1_000,
        "late_events": 0,
        "drift": {
            f: {
                "psi": 0.01 + x / 10,
                "jensen_shannon": x / 20,
                "chi_square": 3.5 + x,
                "chi_square_pvalue": 0.5 - x / 3,
                "ks": 0.02 + x / 50,
                "ks_pvalue": 0.6 - x / 2,
                "wasserstein": x / 7,
            }
            for f in FEATURES
        },
        "prediction_drift": {"psi": x / 10, "ks": x / 40},
        "performance": {"accuracy": 0.9 - x / 10, "f1": 0.8, "log_loss": 0.3 + x},
        "quality": {
            f: {"missing_rate": 0.0, "non_finite_rate": 0.0, "type_mismatch_rate": 0.0}
            for f in FEATURES
        },
        "label_coverage": 0.1,
        "latency_ms": {"p50": 4.0, "p95": 9.0, "p99": 15.0, "max": 30.0},
        "reference_id": "ref-1",
    }


def fill(url: str, models: int, windows: int, now: int) -> float:
    """Store ``models`` x ``windows`` one-minute windows ending at ``now``; returns seconds."""
    history = open_history(url)
    started = time.perf_counter()
    page = Page()
    offset = 0
    try:
        for index in range(windows):
            end = now - (windows - index) * MINUTE
            for m in range(models):
                page.summaries.append(summary(f"model-{m:03d}", index, end))
                offset += 1
            if len(page.summaries) >= 5_000:
                page.offsets[("metrics", 0)] = offset
                history.write(page)
                page = Page()
        if page.summaries:
            page.offsets[("metrics", 0)] = offset
            history.write(page)
        return time.perf_counter() - started
    finally:
        history.close()


async def timed(database: str, model: str, requests: int, now: int) -> dict[str, list[float]]:
    settings = load_settings(
        None,
        {
            "kafka": {"bootstrap_servers": "127.0.0.1:1"},
            "history": {"database": database},
            "logging": {"level": "ERROR"},
        },
    )
    runner, _, port = await serve(settings, "127.0.0.1", 0)
    calls = {
        "GET /api/models": ("/api/models", {}),
        "GET /api/models/{id} (latest 500 windows)": (f"/api/models/{model}", {}),
        "GET /api/models/{id}?since=24 h ago": (
            f"/api/models/{model}",
            {"since": now - 24 * 60 * MINUTE},
        ),
    }
    took: dict[str, list[float]] = {name: [] for name in calls}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for name, (path, params) in calls.items():
                await client.get(path, params=params)  # warm the caches once
                for _ in range(requests):
                    started = time.perf_counter()
                    response = await client.get(path, params=params)
                    took[name].append((time.perf_counter() - started) * 1000)
                    response.raise_for_status()
                    if not response.json():
                        raise SystemExit(f"{name}: an empty answer from a filled store")
    finally:
        await runner.cleanup()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--windows", type=int, default=10_000, help="windows per model")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument(
        "--database", help="postgresql://... to measure PostgreSQL (default: a SQLite file)"
    )
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    now = int(time.time() * 1000)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.db"
        url = args.database or f"sqlite:///{path}"
        total = args.models * args.windows
        seconds = fill(url, args.models, args.windows, now)
        size = f"{path.stat().st_size / 1e9:.2f} GB" if path.exists() else "n/a"
        print(f"filled {total:,} windows in {seconds:.0f} s ({total / seconds:,.0f} windows/s)")
        took = asyncio.run(timed(url, f"model-{args.models // 2:03d}", args.requests, now))
    kind = "PostgreSQL" if args.database else "SQLite"
    rows = []
    for name, values in took.items():
        values.sort()
        rows.append(
            f"| {name} | {nearest_rank(values, 0.5):.1f} ms | {nearest_rank(values, 0.99):.1f} ms |"
        )
    print(*rows, sep="\n")
    body = "\n".join(
        [
            f"Measured on: {machine()}; {kind} ({redacted(url) if args.database else size}), "
            "dashboard and client on the same machine.",
            f"Command: `.venv/bin/python -m benchmarks.history --models {args.models} "
            f"--windows {args.windows}`.",
            "",
            f"{total:,} stored windows ({args.models} models x {args.windows:,} one-minute "
            f"windows, 12 features each), written through `SqlHistory.write` at "
            f"{total / seconds:,.0f} windows/s. Each API call {args.requests} times:",
            "",
            "| Call | p50 | p99 |",
            "| --- | --- | --- |",
            *rows,
        ]
    )
    if not args.no_record:
        record(f"history-{kind.lower()}", body)


if __name__ == "__main__":
    os.environ.setdefault("STREAM_MONITOR_LOGGING__LEVEL", "ERROR")
    main()
