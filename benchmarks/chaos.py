"""The chaos suite: workers killed, rebalanced, a broker restarted, a sink failing; every figure
compared with ``backtest`` of the same input must be 0.

    .venv/bin/python -m benchmarks.chaos                     # 2,000,000 events, both guarantees
    .venv/bin/python -m benchmarks.chaos --events 100000 --no-record

It starts its own Apache Kafka broker (so it can restart it) unless ``--bootstrap`` names one that
``stream-monitor broker start`` runs on this machine. Exits 1 when any figure is not 0.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from benchmarks.record import machine, record
from stream_monitor.devtools.bench.chaos import ChaosOptions, ChaosReport, run_chaos
from stream_monitor.devtools.broker import BrokerInfo, running_brokers, start_kafka, stop
from stream_monitor.devtools.broker.process import free_port


@contextmanager
def restartable_broker(bootstrap: str | None) -> Iterator[tuple[BrokerInfo | None, str]]:
    """The broker at ``bootstrap`` when this machine runs it (else it cannot be restarted), or
    an Apache Kafka broker started for the run on a free port (stopped after it)."""
    if bootstrap:
        port = int(bootstrap.rsplit(":", 1)[1])
        ours = [b for b in running_brokers() if b.port == port and b.kind == "kafka"]
        yield (ours[0] if ours else None), bootstrap
        return
    info = start_kafka(free_port())
    try:
        yield info, f"127.0.0.1:{info.port}"
    finally:
        for running in running_brokers():  # restarted by the run: another process by now
            if running.port == info.port:
                stop(running)


def lines(report: ChaosReport) -> list[str]:
    """The report as markdown."""
    o = report.options
    kills = ", ".join(f"{n} {what}" for what, n in sorted(report.kills.items())) or "none"
    hooks = ", ".join(f"{n} {mode}" for mode, n in sorted(report.webhook_requests.items()))
    figures = [
        ("alert ids missing / unexpected", f"{report.missing_alerts} / {report.unexpected_alerts}"),
        ("alert ids read twice (exactly_once, read_committed)", str(report.duplicate_alerts)),
        (
            "windows missing / unexpected / different",
            f"{report.missing_windows} / {report.unexpected_windows} / {report.differing_windows}",
        ),
        (
            "dead letters missing / unexpected",
            f"{report.missing_dead_letters} / {report.unexpected_dead_letters}",
        ),
        (
            "workers that crashed / did not stop cleanly at the end",
            f"{report.crashes} / {report.unclean_stops}",
        ),
    ]
    out = [
        f"**{o.guarantee}**, seed {o.seed}: {report.records:,} records ({report.predictions:,} "
        f"predictions, {report.labels:,} delayed label events, {report.malformed:,} malformed) "
        f"over {o.models} models and {o.partitions} partitions, produced at "
        f"{o.produce_rate:,.0f}/s; {report.seconds:,.0f} s in all. Backtest of the same input: "
        f"{report.expected_alerts:,} alert ids, {report.expected_windows:,} windows; "
        f"{report.dead_letters:,} dead letters. Kills: {kills}. Webhook requests: {hooks}.",
        "",
        "| Figure | Result |",
        "| --- | --- |",
        *(f"| {name} | {value} |" for name, value in figures),
        "",
        "Schedule: " + "; ".join(f"{t:.0f} s {what}" for t, what in report.schedule) + ".",
    ]
    if report.examples:
        out += ["", "Differences: " + "; ".join(report.examples) + "."]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap")
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=40_000.0, help="records produced per s")
    parser.add_argument(
        "--guarantee",
        choices=("at_least_once", "exactly_once", "both"),
        default="both",
    )
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="the workers' log level (their logs: WORKDIR/worker-N.log)",
    )
    args = parser.parse_args()
    guarantees = (
        ("at_least_once", "exactly_once") if args.guarantee == "both" else (args.guarantee,)
    )
    body = [f"Measured on: {machine()}, Apache Kafka on the same machine."]
    command = (
        f"Command: `.venv/bin/python -m benchmarks.chaos --events {args.events} "
        f"--models {args.models} --seed {args.seed} --rate {args.rate:.0f} "
        f"--guarantee {args.guarantee}`."
    )
    body.append(command)
    failures = 0
    with restartable_broker(args.bootstrap) as (broker, bootstrap):
        for guarantee in guarantees:
            options = ChaosOptions(
                seed=args.seed,
                events=args.events,
                models=args.models,
                guarantee=guarantee,
                produce_rate=args.rate,
                log_level=args.log_level,
            )
            report = asyncio.run(run_chaos(options, broker, bootstrap))
            text = lines(report)
            print("\n".join(text), flush=True)
            body += ["", *text]
            failures += report.failures
    if not args.no_record:
        record("chaos", "\n".join(body))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
