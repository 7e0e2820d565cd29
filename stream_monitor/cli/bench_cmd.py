"""``stream-monitor bench``: end-to-end throughput, lag, RSS and alert latency on a real broker."""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from stream_monitor.cli.common import (
    BootstrapOption,
    ConfigOption,
    SetOption,
    err_console,
    load_from_flags,
    reported_errors,
)

__all__ = ["bench"]


class Guarantee(StrEnum):
    """Processing guarantee of the measured workers."""

    at_least_once = "at_least_once"
    exactly_once = "exactly_once"


def bench(
    events: Annotated[int, typer.Option(min=1_000, help="Events to load and process.")] = 200_000,
    models: Annotated[
        int, typer.Option(min=1, help="Models of the reference workload (events round-robin).")
    ] = 20,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    partitions: Annotated[int, typer.Option(min=1, help="Partitions of the fresh topic.")] = 6,
    guarantee: Annotated[Guarantee, typer.Option(help="Processing guarantee.")] = (
        Guarantee.at_least_once
    ),
    compare: Annotated[
        bool, typer.Option(help="Also measure raw consume-only and the in-memory core.")
    ] = False,
    latency_fraction: Annotated[
        float, typer.Option(min=0.01, max=1.0, help="Latency phase rate, as a fraction of max.")
    ] = 0.5,
    latency_seconds: Annotated[float, typer.Option(min=5, help="Latency phase length.")] = 30.0,
    window_events: Annotated[
        int, typer.Option(min=10, help="Count window (and warm-up) size per model.")
    ] = 1000,
    segment: Annotated[
        list[str] | None,
        typer.Option(
            help="Monitor segments by this (repeatable): a categorical feature of the events "
            "(the reference workload's channel has 3 values, country 6), metadata.<key> or "
            "model_version."
        ),
    ] = None,
    file: Annotated[
        Path | None, typer.Option(help="Events from this file instead of the reference workload.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write every figure as JSON here.")] = None,
    keep_topics: Annotated[
        bool, typer.Option(help="Keep the run's topics on the broker (deleted by default).")
    ] = False,
    config: ConfigOption = None,
    sets: SetOption = None,
    bootstrap_servers: BootstrapOption = None,
) -> None:
    """Load events into a fresh topic, run the monitor on them and measure it end to end."""
    from stream_monitor.devtools.bench.runner import BenchOptions, run_bench, table

    with reported_errors():
        settings = load_from_flags(config, sets, bootstrap_servers)
        options = BenchOptions(
            events=events,
            models=models,
            workers=workers,
            partitions=partitions,
            guarantee=guarantee.value,
            compare=compare,
            latency_fraction=latency_fraction,
            latency_seconds=latency_seconds,
            window_events=window_events,
            segments=tuple(segment or ()),
            file=file,
            keep_topics=keep_topics,
        )
        err_console.print(
            f"bench on {settings.kafka.bootstrap_servers}: {events:,} events, {workers} worker(s), "
            f"{partitions} partitions, {guarantee.value}",
            markup=False,
        )
        result = asyncio.run(run_bench(settings, options))
    grid = Table(title="stream-monitor bench", show_header=True)
    grid.add_column("measure")
    grid.add_column("figure", justify="right")
    for name, value in table(result):
        grid.add_row(name, value)
    Console(highlight=False).print(grid)
    if out is not None:
        out.write_bytes(result.to_json())
        err_console.print(f"figures written to {out}", markup=False)
