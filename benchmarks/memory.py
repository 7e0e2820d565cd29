"""Bounded memory: RSS does not grow with events seen, and many models fit in little memory.

    .venv/bin/python -m benchmarks.memory            # records docs/benchmarks.md

1. One model (10 numeric + 2 categorical features, score, inline labels): RSS after 1,000,000
   and after 10,000,000 events; the target is growth under 10%.
2. 1,000 models x 20 numeric features, each past its warm-up: RSS of the process holding them,
   right after their second window closed (2,000 events each) and with their third window half
   full (2,500 events each, the steady state: every model has a window open); the target is
   60 MB for the monitors. Each measure runs in a process of its own.
3. The same models with segments by a metadata key of 3 values (each model and its 3 segments
   past their warm-up): measured, per monitor.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import random
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import orjson
import psutil

from benchmarks.record import machine, record
from stream_monitor._native import decode_batch
from stream_monitor.config.models import ModelSpec
from stream_monitor.monitor import ModelMonitor, MonitorSet
from stream_monitor.monitor.registry import release_memory

T0 = 1_795_800_000_000
BATCH = 2_000  # events per update_batch, as processing.batch_max_records


def rss_mb() -> float:
    gc.collect()
    return float(psutil.Process().memory_info().rss) / 2**20


def event(
    i: int, model: str, features: dict[str, Any], rng: random.Random, segmented: bool = False
) -> bytes:
    """An event as a record value on the predictions topic (``segmented``: with a metadata key
    of 3 values)."""
    score = rng.random()
    data = {
        "event_id": f"e{i}",
        "model_id": model,
        "timestamp": T0 + i,
        "features": features,
        "prediction": int(score > 0.5),
        "score": score,
        "label": int(rng.random() < 0.4),
        "latency_ms": rng.expovariate(0.3),
    }
    if segmented:
        data["metadata"] = {"channel": ("web", "app", "pos")[i % 3]}
    return orjson.dumps(data)


def one_model(total: int, checkpoint: int) -> tuple[float, float, float]:
    rng = random.Random(1)
    monitor = ModelMonitor("m", ModelSpec())
    start = rss_mb()
    at_checkpoint = 0.0
    for offset in range(0, total, BATCH):
        batch = []
        for i in range(offset, min(offset + BATCH, total)):
            features: dict[str, Any] = {f"n{j}": rng.gauss(0, 1) for j in range(10)}
            features["c0"] = rng.choice("abcdef")
            features["c1"] = rng.choice("xyz")
            batch.append(event(i, "m", features, rng))
        monitor.update_native(decode_batch(batch), list(range(len(batch))))
        if offset + BATCH == checkpoint:
            at_checkpoint = rss_mb()
    return start, at_checkpoint, rss_mb()


def many_models(models: int, per_model: int, segmented: bool = False) -> tuple[float, float]:
    rng = random.Random(2)
    start = rss_mb()
    spec = ModelSpec.model_validate({"segments": {"by": ["metadata.channel"] if segmented else []}})
    monitors = MonitorSet({}, spec, "monitor")
    rounds = max(1, BATCH // models)  # each batch: every model, a few events each
    for first in range(0, per_model, rounds):
        batch = []
        for round_ in range(first, min(first + rounds, per_model)):
            for m in range(models):
                features = {f"n{j}": rng.gauss(0, 1) for j in range(20)}
                i = round_ * models + m
                batch.append(event(i, f"model-{m:04d}", features, rng, segmented))
        monitors.update_native(decode_batch(batch))
    del batch  # the benchmark's own input, not the monitors'
    # What a worker's loop does between batches: the heap is trimmed of what the last batches
    # freed (at most once a second).
    time.sleep(1.0)
    release_memory()
    return start, rss_mb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--checkpoint", type=int, default=1_000_000)
    parser.add_argument("--models", type=int, default=1_000)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    # The single model first, in a process that never held 1,000 models.
    _, first, last = one_model(args.events, args.checkpoint)
    growth = (last - first) / first * 100
    single = (
        f"| one model: RSS after {args.checkpoint:,} -> {args.events:,} events | "
        f"{first:,.1f} MB -> {last:,.1f} MB ({growth:+.1f}%) | within 10% |"
    )
    print(single, flush=True)
    rows = []
    for per_model, when in ((2_000, "a window just closed"), (2_500, "a window half full")):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as fresh:
            base, after = fresh.submit(many_models, args.models, per_model).result()
        rows.append(
            f"| {args.models:,} models x 20 features, {per_model:,} events each ({when}) | "
            f"{after:,.0f} MB (process; {after - base:,.0f} MB for the monitors) | "
            "60 MB (monitors) |"
        )
        print(rows[-1], flush=True)
    # Segments: each model's events split 3 ways (a metadata key), every segment past its own
    # warm-up (1,500 events each) with a window half full.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as fresh:
        base, after = fresh.submit(many_models, args.models, 5_000, True).result()
    per_monitor = (after - base) * 1024 / (4 * args.models)  # the model and its 3 segments
    rows.append(
        f"| {args.models:,} models x 20 features, segments by a key of 3 values, 5,000 events "
        f"each (every segment past its warm-up, a window half full) | {after:,.0f} MB "
        f"(process; {after - base:,.0f} MB for the monitors, {per_monitor:,.0f} KB a monitor) "
        "| measured |"
    )
    print(rows[-1], flush=True)
    body = "\n".join(
        [
            f"Measured on: {machine()}.",
            f"Command: `.venv/bin/python -m benchmarks.memory --events {args.events} "
            f"--models {args.models}`.",
            "",
            "| Measure | Result | Target |",
            "| --- | --- | --- |",
            single,
            *rows,
        ]
    )
    if not args.no_record:
        record("memory", body)


if __name__ == "__main__":
    main()
