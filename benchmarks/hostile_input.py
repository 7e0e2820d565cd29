"""Hostile input keeps memory within the configured caps.

    .venv/bin/python -m benchmarks.hostile_input            # records docs/benchmarks.md

Three storms, each through the worker's batch path (``process_batch``, as on the real broker,
without the broker), each in a fresh process; RSS is read after a fifth of the storm and at its
end, so growth past the cap shows:

1. labels for events never seen (random event ids), for one model: they wait in the label join,
   at most ``performance.max_pending_labels`` (10,000) per model;
2. predictions of made-up model ids: at most ``monitoring.max_unlisted_models`` (2,000) per
   partition are monitored, the rest refused to the dead-letter topic;
3. malformed records (random bytes, broken JSON): all refused, nothing kept.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor

import orjson
import psutil

from benchmarks.record import machine, record
from stream_monitor.config import load_settings
from stream_monitor.events import EventCodec
from stream_monitor.monitor import MonitorSet
from stream_monitor.monitor.registry import release_memory
from stream_monitor.runtime.outputs import process_batch

T0 = 1_795_800_000_000
BATCH = 2_000


def rss_mb() -> float:
    gc.collect()
    release_memory(freed=True)  # as the worker's loop does
    return float(psutil.Process().memory_info().rss) / 2**20


def storm(kind: str, total: int) -> tuple[float, float, float, int, int]:
    """(RSS before, after a fifth, at the end, records refused, what the cap holds)."""
    settings = load_settings(None, {})
    codec = EventCodec(settings.limits)
    monitors = MonitorSet.from_settings(settings)
    rng = random.Random(7)
    if kind == "labels":  # the model exists and is past its warm-up
        warm = [
            orjson.dumps(
                {
                    "event_id": f"w{i}",
                    "model_id": "m",
                    "timestamp": T0 + i,
                    "features": {"x": rng.gauss(0, 1)},
                    "prediction": 1,
                    "score": 0.5,
                }
            )
            for i in range(2_000)
        ]
        process_batch(codec, monitors, warm, labels=False)
    start = rss_mb()
    fifth = 0.0
    refused = 0
    for offset in range(0, total, BATCH):
        values: list[bytes | None]
        if kind == "labels":
            values = [
                orjson.dumps(
                    {
                        "event_id": f"u{rng.getrandbits(64):x}",
                        "model_id": "m",
                        "timestamp": T0 + offset + i,
                        "label": i % 2,
                    }
                )
                for i in range(BATCH)
            ]
        elif kind == "models":
            values = [
                orjson.dumps(
                    {
                        "event_id": f"e{offset + i}",
                        "model_id": f"made-up-{rng.getrandbits(64):x}",
                        "timestamp": T0 + offset + i,
                        "features": {"x": 1.0},
                        "prediction": 1,
                    }
                )
                for i in range(BATCH)
            ]
        else:
            values = [
                rng.randbytes(rng.randrange(1, 400))
                if i % 2
                else b'{"event_id":"e","model_id":"m","timestamp":' + rng.randbytes(8)
                for i in range(BATCH)
            ]
        done = process_batch(codec, monitors, values, labels=kind == "labels")
        refused += len(done.rejected)
        if offset + BATCH == total // 5:
            fifth = rss_mb()
    held = (
        len(monitors.monitors["m"].outcomes.join.labels())
        if kind == "labels"
        else len(monitors.monitors)
    )
    return start, fifth, rss_mb(), refused, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    total = args.records // BATCH * BATCH
    names = {
        "labels": "labels for unknown events (one model)",
        "models": "predictions of made-up model ids",
        "malformed": "malformed records",
    }
    caps = {"labels": "10,000 waiting labels", "models": "2,000 models", "malformed": "nothing"}
    rows = []
    for kind, name in names.items():
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as fresh:
            start, fifth, end, refused, held = fresh.submit(storm, kind, total).result()
        rows.append(
            f"| {total:,} {name} | {start:,.0f} -> {fifth:,.0f} -> {end:,.0f} MB "
            f"({end - fifth:+,.1f} MB over the last four fifths) | {refused:,} refused, "
            f"{held:,} held (cap: {caps[kind]}) |"
        )
        print(rows[-1], flush=True)
    body = "\n".join(
        [
            f"Measured on: {machine()}.",
            f"Command: `.venv/bin/python -m benchmarks.hostile_input --records {args.records}`.",
            "",
            "| Storm | RSS: before -> after a fifth -> end | Refused, held |",
            "| --- | --- | --- |",
            *rows,
        ]
    )
    if not args.no_record:
        record("hostile-input", body)


if __name__ == "__main__":
    main()
