"""End-to-end benchmark suite on a real broker; prints a table and records docs/benchmarks.md.

    .venv/bin/stream-monitor broker start --port 19092
    .venv/bin/python -m benchmarks.end_to_end --bootstrap 127.0.0.1:19092     # records the doc

Runs `stream-monitor bench` (the same code, in this process) for: one worker at_least_once with
the peers (raw aiokafka consume-only, in-memory core), the same with segments by a feature of 3
values, two workers, one worker exactly_once, and optionally the RSS soak (``--soak``, 5,000,000
events). Every model runs the defaults, multivariate drift included.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from benchmarks.record import machine, record
from stream_monitor.config import load_settings
from stream_monitor.devtools.bench.runner import BenchOptions, BenchResult, run_bench


def _run(bootstrap: str, **options: Any) -> BenchResult:
    settings = load_settings(None, {"kafka": {"bootstrap_servers": bootstrap}})
    result = asyncio.run(run_bench(settings, BenchOptions(**options)))
    print(
        f"{options}: {result.monitor_rate:,.0f} events/s, alert p99 "
        f"{result.alert_latency_ms.get('p99')} ms",
        flush=True,
    )
    return result


def _latency(figures: dict[str, Any]) -> str:
    return (
        f"{figures.get('p50')} / {figures.get('p95')} / {figures.get('p99')} (n={figures.get('n')})"
    )


def _rss(result: BenchResult) -> str:
    rss = [mb for _, mb in result.rss_mb if mb > 0]
    if not rss:
        return "-"
    early = sorted(rss[: max(1, len(rss) // 4)])[len(rss[: max(1, len(rss) // 4)]) // 2]
    return f"{early:,.0f} -> {rss[-1]:,.0f} MB ({(rss[-1] - early) / early * 100:+.1f}%)"


def soak_only(bootstrap: str, record_it: bool) -> None:
    """The 5,000,000-event RSS soak of one worker, in its own section."""
    soak = _run(bootstrap, events=5_000_000, latency_seconds=10)
    body = "\n".join(
        [
            f"Measured on: {machine()}, Apache Kafka 4.1.1 on the same machine.",
            f"Command: `.venv/bin/python -m benchmarks.end_to_end --bootstrap {bootstrap} "
            "--soak-only`.",
            "",
            "| Run | Events/s | Worker RSS (early -> end) | Max lag |",
            "| --- | --- | --- | --- |",
            f"| 1 worker, at_least_once, 5,000,000 events | {soak.monitor_rate:,.0f} "
            f"| {_rss(soak)} | {max((lag for _, lag in soak.lag), default=0):,} |",
        ]
    )
    print(body)
    if record_it:
        record("soak", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--soak", action="store_true", help="also the 5,000,000-event RSS soak")
    parser.add_argument("--soak-only", action="store_true", help="only the soak (own section)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if args.soak_only:
        soak_only(args.bootstrap, record_it=not args.no_record)
        return
    one = _run(args.bootstrap, events=args.events, compare=True)
    segmented = _run(args.bootstrap, events=args.events, segments=("channel",))
    two = _run(args.bootstrap, events=args.events, workers=2)
    eos = _run(args.bootstrap, events=args.events, guarantee="exactly_once")
    soak = _run(args.bootstrap, events=5_000_000, latency_seconds=10) if args.soak else None
    ratio_two = two.monitor_rate / one.monitor_rate if one.monitor_rate else 0
    rows = [
        "| Run | Events/s | vs raw consume + decode | vs raw consume | vs core "
        "| Alert latency ms p50 / p95 / p99 | Worker RSS (early -> end) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| raw aiokafka consume-only (upper bound) | {one.raw_consume_rate:,.0f} | | 1 | | | |",
        f"| raw aiokafka consume + `orjson.loads` (the target's reference) "
        f"| {one.raw_decode_rate:,.0f} | 1 | | | | |",
        f"| in-memory core alone (decode + every update) | {one.core_rate:,.0f} | | | 1 | | |",
    ]
    if one.faust_rate:
        rows.append(
            "| faust-streaming agents running the same monitors (`stream_monitor.faust`), 1 "
            "worker; the adapter writes the partition's snapshot to its table's changelog after "
            f"every batch of up to 500 events | {one.faust_rate:,.0f} "
            "| | | | | |"
        )
    for name, result in (
        ("1 worker, at_least_once", one),
        ("1 worker, at_least_once, segments by channel (3 values)", segmented),
        ("2 workers, at_least_once", two),
        ("1 worker, exactly_once", eos),
        *((("1 worker, 5,000,000-event soak", soak),) if soak else ()),
    ):
        raw = result.monitor_rate / one.raw_consume_rate if one.raw_consume_rate else 0
        decoded = result.monitor_rate / one.raw_decode_rate if one.raw_decode_rate else 0
        core = result.monitor_rate / one.core_rate if one.core_rate else 0
        rows.append(
            f"| {name} | {result.monitor_rate:,.0f} | {decoded:.3f} | {raw:.3f} | {core:.2f} "
            f"| {_latency(result.alert_latency_ms)} at {result.latency_rate:,.0f}/s "
            f"| {_rss(result)} |"
        )
    body = "\n".join(
        [
            f"Measured on: {machine()}, Apache Kafka 4.1.1 on the same machine.",
            f"Command: `.venv/bin/python -m benchmarks.end_to_end --bootstrap {args.bootstrap} "
            f"--events {args.events}{' --soak' if args.soak else ''}`.",
            "",
            *rows,
            "",
            f"Two workers / one worker: {ratio_two:.2f}x. One worker / Faust agents: "
            + (
                f"{one.monitor_rate / one.faust_rate:.1f}x. "
                if one.faust_rate
                else "not measured. "
            )
            + "Latency is measured at half the "
            "measured rate of that run, from the send time of a window's last event to the alert "
            "read from the alerts topic.",
        ]
    )
    print(body)
    if not args.no_record:
        record("end-to-end", body)


if __name__ == "__main__":
    main()
