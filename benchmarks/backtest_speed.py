"""`stream-monitor backtest` against merely parsing the same file, on one model of 12 features.

    .venv/bin/python -m benchmarks.backtest_speed      # records docs/benchmarks.md

The workload of the native-core issue: one model, 11 numeric and 1 categorical feature, a score
and a label on every event, about 400-byte events, 400,000 of them in a JSONL file. Timed: the
whole `stream-monitor backtest` command (a subprocess, start-up included) against reading the
same file and `orjson.loads`-ing it line by line in Python. Target: at most 3x, aim 1.5x.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from benchmarks.record import machine, record

T0 = 1_795_800_000_000


def write_events(path: Path, count: int, seed: int = 7) -> None:
    """``count`` events of one model, drift in the last quarter so alerts fire."""
    rng = random.Random(seed)
    with path.open("wb") as out:
        for i in range(count):
            shift = 1.0 if i >= count * 3 // 4 else 0.0
            features: dict[str, object] = {
                f"x{j}": round(rng.gauss(j + shift, 1 + j / 10), 4) for j in range(11)
            }
            features["segment"] = rng.choice(("a", "b", "c", "d"))
            score = round(rng.random(), 4)
            event = {
                "event_id": f"e-{i:010d}",
                "model_id": "fraud",
                "model_version": "2026.12.1",
                "timestamp": T0 + i * 10,
                "features": features,
                "prediction": int(score > 0.5),
                "score": score,
                "label": int(rng.random() < 0.4),
                "latency_ms": round(rng.expovariate(0.3), 3),
            }
            out.write(orjson.dumps(event) + b"\n")


def parse_seconds(path: Path) -> float:
    started = time.perf_counter()
    with path.open("rb") as handle:
        for line in handle:
            orjson.loads(line)
    return time.perf_counter() - started


def backtest_seconds(path: Path, alerts: Path) -> float:
    command = [
        sys.executable,
        "-m",
        "stream_monitor",
        "backtest",
        str(path),
        "--alerts",
        str(alerts),
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path, alerts = Path(folder) / "events.jsonl", Path(folder) / "alerts.jsonl"
        write_events(path, args.events)
        size = path.stat().st_size / args.events
        parse = min(parse_seconds(path) for _ in range(3))
        backtest = min(backtest_seconds(path, alerts) for _ in range(3))
        fired = sum(1 for line in alerts.read_bytes().splitlines() if b'"firing"' in line)
    ratio = backtest / parse
    table = "\n".join(
        [
            "| Measure | Seconds | Events/s |",
            "| --- | --- | --- |",
            f"| `orjson.loads` of every line, in Python | {parse:.2f} "
            f"| {args.events / parse:,.0f} |",
            f"| `stream-monitor backtest` (start-up included) | {backtest:.2f} "
            f"| {args.events / backtest:,.0f} |",
            f"| **backtest / parse** | **{ratio:.2f}x** | target <= 3x, aim 1.5x |",
        ]
    )
    body = "\n".join(
        [
            f"Measured on: {machine()}.",
            f"Command: `.venv/bin/python -m benchmarks.backtest_speed --events {args.events}` "
            f"({size:.0f}-byte events of one model, 12 features; best of 3 runs each; the "
            f"backtest raised {fired} firing alerts).",
            "",
            table,
        ]
    )
    print(body)
    if not args.no_record:
        record("backtest-speed", body)


if __name__ == "__main__":
    main()
