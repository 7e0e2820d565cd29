"""How steadily `stream-monitor replay --rate N` holds its rate; records docs/benchmarks.md.

    .venv/bin/stream-monitor broker start --port 19092
    .venv/bin/python -m benchmarks.replay_rate --bootstrap 127.0.0.1:19092

For each rate, the reference workload is replayed from a JSONL file for ``--seconds`` seconds into
a fresh topic; the records' timestamps (set by the producer at send time) are read back and
counted in every 10 s window, sliding by 1 s. The table gives the worst deviation from 10 x rate.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchmarks.record import machine, record
from stream_monitor.config import load_settings
from stream_monitor.devtools.bench.workload import reference_events
from stream_monitor.replay import read_records, replay_records
from stream_monitor.replay.tools import ReplayStats


def worst_window_deviation(timestamps: list[int], rate: float, window_s: int = 10) -> float:
    """Largest |count / (rate x window) - 1| over windows sliding by 1 s inside the run."""
    start, end = min(timestamps), max(timestamps)
    worst = 0.0
    for left in range(start, end - window_s * 1000 + 1, 1000):
        count = sum(1 for t in timestamps if left <= t < left + window_s * 1000)
        worst = max(worst, abs(count / (rate * window_s) - 1))
    return worst


async def timestamps_of(bootstrap: str, topic: str, expected: int) -> list[int]:
    """The record timestamps of ``topic`` (reads until ``expected`` or 10 s of silence)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[int] = []
    quiet = 0
    try:
        while len(found) < expected and quiet < 20:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            got = [r.timestamp for records in batches.values() for r in records]
            found += got
            quiet = 0 if got else quiet + 1
    finally:
        await consumer.stop()
    return found


async def one_rate(bootstrap: str, rate: float, seconds: float) -> tuple[ReplayStats, float]:
    settings = load_settings(None, {"kafka": {"bootstrap_servers": bootstrap}})
    topic = f"replay-rate-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 6, 1)])
    await admin.close()
    count = int(rate * seconds)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.jsonl"
        path.write_bytes(b"\n".join(reference_events(min(count, 100_000))) + b"\n")
        stats = await replay_records(
            settings,
            lambda: read_records(path),
            topic,
            rate=rate,
            loop=True,
            limit=count,
            rekey=True,
        )
    timestamps = await timestamps_of(bootstrap, topic, stats.sent)
    return stats, worst_window_deviation(timestamps, rate)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--rates", default="1000,5000,20000")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    rows = [
        "| Target rate | Sent | Achieved | Worst 10 s window vs target "
        "| Produce latency p50 / p99 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for rate in (float(r) for r in args.rates.split(",")):
        stats, worst = asyncio.run(one_rate(args.bootstrap, rate, args.seconds))
        summary = stats.summary()
        rows.append(
            f"| {rate:,.0f}/s | {summary['sent']:,} | {summary['rate']:,.0f}/s | "
            f"{worst * 100:.2f}% | {summary['latency_ms_p50']} / {summary['latency_ms_p99']} ms |"
        )
        print(rows[-1], flush=True)
    body = "\n".join(
        [
            f"Measured on: {machine()}, Apache Kafka 4.1.1 on the same machine.",
            f"Command: `.venv/bin/python -m benchmarks.replay_rate --bootstrap {args.bootstrap} "
            f"--rates {args.rates} --seconds {args.seconds:g}`.",
            "",
            *rows,
        ]
    )
    print(body)
    if not args.no_record:
        record("replay-rate", body)


if __name__ == "__main__":
    main()
