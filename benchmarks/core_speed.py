"""Speed budget of the in-memory core: decode + validate + every monitor update, one core.

    .venv/bin/python -m benchmarks.core_speed      # records docs/benchmarks.md

Reference workload (stream_monitor/devtools/bench/workload.py): 20 models, 10 numeric + 2
categorical features, binary classification with a score and a label on every event, count
windows of 1,000 events, default drift, quality and performance rules, about 400-byte JSON
events. The first 40,000 events (the models' warm-up) are not timed. Batches go the way a worker
takes them: the native decoder (GIL released), then each model's events through its native core
and the Python per-window work. A pyinstrument profile of the timed part says where the time goes.
"""

from __future__ import annotations

import argparse
import statistics
import time

from pyinstrument import Profiler

from benchmarks.record import machine, record
from stream_monitor._native import Batch, decode_batch
from stream_monitor.config.models import ModelSpec
from stream_monitor.devtools.bench.workload import reference_events
from stream_monitor.monitor import MonitorSet

BATCH = 1_000
WARMUP = 40_000


def decoded_batch(batch: list[bytes]) -> Batch:
    """A natively decoded batch (the workload has no event the schema must decide)."""
    decoded = decode_batch(batch)
    assert not decoded.deferred()  # noqa: S101 - the workload is plain
    return decoded


def warmed_up(events: list[bytes]) -> MonitorSet:
    """Monitors past the models' warm-up (the first WARMUP events, not timed)."""
    monitors = MonitorSet({}, ModelSpec(), "monitor")
    for i in range(0, WARMUP, BATCH):
        monitors.update_native(decoded_batch(events[i : i + BATCH]))
    return monitors


def timed(events: list[bytes], parts: int = 5) -> dict[str, float]:
    """Per-event costs, from the median of ``parts`` consecutive parts of the timed events.

    This machine's speed wanders by a third from minute to minute; the median part is the
    steady figure (each part spans several window closes of every model).
    """
    monitors = warmed_up(events)
    measured = events[WARMUP:]
    clock = time.perf_counter
    size = len(measured) // parts // BATCH * BATCH
    costs: list[tuple[float, float]] = []
    for part in range(parts):
        decode_seconds = update_seconds = 0.0
        for i in range(part * size, (part + 1) * size, BATCH):
            started = clock()
            batch = decoded_batch(measured[i : i + BATCH])
            decoded = clock()
            monitors.update_native(batch)
            decode_seconds += decoded - started
            update_seconds += clock() - decoded
        costs.append((decode_seconds / size * 1e6, update_seconds / size * 1e6))
    decode_us = statistics.median(c[0] for c in costs)
    update_us = statistics.median(c[1] for c in costs)
    return {
        "events": size * parts,
        "decode_us": decode_us,
        "update_us": update_us,
        "total_rate": 1e6 / (decode_us + update_us),
    }


def by_batch_size(events: list[bytes], sizes: tuple[int, ...]) -> list[tuple[int, float]]:
    """Monitor update cost (us per event) when a batch brings each model fewer events."""
    monitors = warmed_up(events)
    costs = []
    for size in sizes:
        chosen = events[WARMUP : WARMUP + max(size * 20, 20_000)]
        batches = [decoded_batch(chosen[i : i + size]) for i in range(0, len(chosen), size)]
        started = time.perf_counter()
        for batch in batches:
            monitors.update_native(batch)
        costs.append((size, (time.perf_counter() - started) / len(chosen) * 1e6))
    return costs


def profile(events: list[bytes]) -> str:
    monitors = warmed_up(events)
    profiler = Profiler(interval=0.001)
    profiler.start()
    for i in range(WARMUP, len(events), BATCH):
        monitors.update_native(decoded_batch(events[i : i + BATCH]))
    profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    lines = [line for line in text.splitlines() if "|-" in line or "`-" in line]
    return "\n".join(lines[:28])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    events = reference_events(args.events)
    size = sum(map(len, events)) / len(events)
    result = timed(events)
    table = "\n".join(
        [
            "| Stage | Per event | Rate |",
            "| --- | --- | --- |",
            f"| decode + validate (native, GIL released) | {result['decode_us']:.1f} us "
            f"| {1e6 / result['decode_us']:,.0f} events/s |",
            f"| every monitor update (20 models) | {result['update_us']:.1f} us "
            f"| {1e6 / result['update_us']:,.0f} events/s |",
            f"| **total** | {result['decode_us'] + result['update_us']:.1f} us "
            f"| **{result['total_rate']:,.0f} events/s** (target 150,000) |",
        ]
    )
    print(table)
    shapes = "\n".join(
        [
            "| Batch (20 models) | Events per model per batch | Monitor update per event |",
            "| --- | --- | --- |",
            *(
                f"| {size:,} | {size / 20:g} | {cost:.1f} us ({1e6 / cost:,.0f} events/s) |"
                for size, cost in by_batch_size(events, (20, 100, 1_000, 2_000))
            ),
        ]
    )
    print(shapes)
    tree = profile(events)
    print(tree)
    body = "\n".join(
        [
            f"Measured on: {machine()}.",
            f"Command: `.venv/bin/python -m benchmarks.core_speed --events {args.events}` "
            f"({result['events']:,.0f} timed events of {size:.0f} bytes on average, batches of "
            f"{BATCH:,}; the median of 5 consecutive parts).",
            "",
            table,
            "",
            "The same update when batches are smaller (fewer events of each model per batch):",
            "",
            shapes,
            "",
            "Where the time goes (pyinstrument, seconds of the profiled run):",
            "",
            "```",
            tree,
            "```",
        ]
    )
    if not args.no_record:
        record("core-speed", body)


if __name__ == "__main__":
    main()
