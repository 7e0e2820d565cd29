"""What the emitter SDK (``stream_monitor.integrations.client``) adds to a model server's predict
call, on a real broker.

    .venv/bin/python -m benchmarks.emitter            # records docs/benchmarks.md

Starts an Apache Kafka broker on a free port (or uses ``--bootstrap-servers``), then calls
``Emitter.emit_prediction`` from one thread with a 12-feature event (11 numeric, 1 categorical,
a score), timing every call, first paced at ``--rate`` calls/s (a busy model server), then as
fast as one thread can; prints p50, p99 and max per call, the unpaced calls/s, and what the
broker acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time

from benchmarks.kafka import a_broker
from benchmarks.record import machine, record
from stream_monitor.config import load_settings
from stream_monitor.integrations.client import Emitter
from stream_monitor.monitor.quantiles import nearest_rank
from stream_monitor.runtime.topics import ensure_topics


def features(rng: random.Random) -> dict[str, object]:
    out: dict[str, object] = {f"n{j}": rng.gauss(0, 1) for j in range(11)}
    out["country"] = rng.choice(("FR", "DE", "US", "JP"))
    return out


def calls(emitter: Emitter, count: int, rate: float) -> list[int]:
    """Nanoseconds per call; paced at ``rate`` calls/s (0: unpaced)."""
    rng = random.Random(1)
    inputs = [features(rng) for _ in range(1_000)]
    took = []
    gap = 1 / rate if rate else 0.0
    next_at = time.perf_counter()
    for i in range(count):
        if gap:
            next_at += gap
            while time.perf_counter() < next_at:
                pass
        started = time.perf_counter_ns()
        emitter.emit_prediction("fraud", inputs[i % 1_000], prediction=i % 2, score=0.5)
        took.append(time.perf_counter_ns() - started)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=10_000)
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    with a_broker(args.bootstrap_servers) as bootstrap:
        settings = load_settings(None, {"kafka": {"bootstrap_servers": bootstrap}})
        asyncio.run(ensure_topics(settings))
        rows = []
        with Emitter(bootstrap, settings.topics.predictions, close_timeout=30) as emitter:
            # Warm up: connections, metadata, and a freshly started broker's JIT (10 s).
            calls(emitter, int(args.rate * 10), args.rate)
            paced = calls(emitter, args.calls, args.rate)
            started = time.perf_counter()
            unpaced = calls(emitter, args.calls, 0)
            rate = args.calls / (time.perf_counter() - started)
        counters = emitter.counters
        for name, took in ((f"paced at {args.rate:,.0f} calls/s", paced), ("unpaced", unpaced)):
            us = sorted(t / 1_000 for t in took)
            rows.append(
                f"| `emit_prediction`, {name} | {nearest_rank(us, 0.5):.1f} us | "
                f"{nearest_rank(us, 0.99):.1f} us | {us[-1]:,.0f} us | "
                f"mean {statistics.fmean(us):.1f} us |"
            )
        rows.append(f"| one thread, unpaced | {rate:,.0f} calls/s | | | |")
        delivered = (
            f"Delivered: {counters.sent:,} sent, {counters.dropped:,} dropped, "
            f"{counters.failed:,} failed of {counters.emitted:,} emitted."
        )
        print("\n".join(rows), delivered, sep="\n")
        body = "\n".join(
            [
                f"Measured on: {machine()}; the broker on the same machine.",
                f"Command: `.venv/bin/python -m benchmarks.emitter --calls {args.calls} "
                f"--rate {args.rate:g}`.",
                "",
                "| Call | p50 | p99 | max | |",
                "| --- | --- | --- | --- | --- |",
                *rows,
                "",
                f"{delivered} Target: p99 under 20 us.",
            ]
        )
        if not args.no_record:
            record("emitter", body)


if __name__ == "__main__":
    main()
