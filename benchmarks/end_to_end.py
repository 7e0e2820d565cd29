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
import statistics
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


def repeats(bootstrap: str, count: int, events: int, single_events: int, record_it: bool) -> None:
    """The two workloads of the structure's targets, ``count`` times each, every run against
    the raw consumer of its own topic in the same run (their own section)."""
    rows = [
        "| Run | Workload | Events/s | Raw consume + decode | Ratio | Alert p99 ms at half rate |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    ratios: dict[str, list[float]] = {"segmented": [], "single": []}
    p99s: list[float] = []
    for run in range(1, count + 1):
        for name, options in (
            ("segmented", {"events": events, "segments": ("channel",)}),
            ("single", {"events": single_events, "models": 1}),
        ):
            result = _run(bootstrap, compare=True, faust=False, **options)
            ratio = result.monitor_rate / result.raw_decode_rate if result.raw_decode_rate else 0
            ratios[name].append(ratio)
            p99 = result.alert_latency_ms.get("p99")
            if name == "segmented" and isinstance(p99, (int, float)):
                p99s.append(float(p99))
            label = (
                f"20 models, segments by channel (3 values), {events:,} events"
                if name == "segmented"
                else f"one model, 12 features, score and label, {single_events:,} events"
            )
            rows.append(
                f"| {run} | {label} | {result.monitor_rate:,.0f} | {result.raw_decode_rate:,.0f} "
                f"| {ratio:.3f} | {p99 if p99 is not None else '-'} |"
            )
    body = "\n".join(
        [
            f"Measured on: {machine()}, Apache Kafka 4.1.1 on the same machine.",
            f"Command: `.venv/bin/python -m benchmarks.end_to_end --bootstrap {bootstrap} "
            f"--repeats {count}`. Every model runs the defaults, multivariate drift included.",
            "",
            *rows,
            "",
            "Median ratio to raw consume + decode: segmented "
            f"{statistics.median(ratios['segmented']):.3f}, single model "
            f"{statistics.median(ratios['single']):.3f}. Segmented alert p99 at half rate, "
            f"worst of {count}: {max(p99s) if p99s else '-'} ms.",
        ]
    )
    print(body)
    if record_it:
        record("end-to-end-repeats", body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument(
        "--single-events",
        type=int,
        default=1_000_000,
        help="events of the single-model workload (one model, 12 features, score and label)",
    )
    parser.add_argument("--soak", action="store_true", help="also the 5,000,000-event RSS soak")
    parser.add_argument("--soak-only", action="store_true", help="only the soak (own section)")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument(
        "--repeats",
        type=int,
        default=0,
        help="only the segmented and single-model workloads, this many times each",
    )
    args = parser.parse_args()
    if args.repeats:
        repeats(args.bootstrap, args.repeats, args.events, args.single_events, not args.no_record)
        return
    if args.soak_only:
        soak_only(args.bootstrap, record_it=not args.no_record)
        return
    one = _run(args.bootstrap, events=args.events, compare=True)
    segmented = _run(
        args.bootstrap, events=args.events, segments=("channel",), compare=True, faust=False
    )
    single = _run(args.bootstrap, events=args.single_events, models=1, compare=True, faust=False)
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
        (f"1 worker, at_least_once, one model ({args.single_events:,} events)", single),
        ("2 workers, at_least_once", two),
        ("1 worker, exactly_once", eos),
        *((("1 worker, 5,000,000-event soak", soak),) if soak else ()),
    ):
        # against the peers of the run's own topic when it measured them, else the first run's
        peers = result if result.raw_consume_rate else one
        raw = result.monitor_rate / peers.raw_consume_rate if peers.raw_consume_rate else 0
        decoded = result.monitor_rate / peers.raw_decode_rate if peers.raw_decode_rate else 0
        core = result.monitor_rate / peers.core_rate if peers.core_rate else 0
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
            "The ratios of a row are to the peers measured on that row's own topic in the same "
            "run (the raw rows below are the first run's).",
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
