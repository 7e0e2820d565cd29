"""``stream-monitor record`` and ``stream-monitor replay``: recorded streams for load tests."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from stream_monitor.cli.common import (
    BootstrapOption,
    ConfigOption,
    SetOption,
    err_console,
    load_from_flags,
    reported_errors,
)
from stream_monitor.errors import StreamMonitorError

if TYPE_CHECKING:
    from stream_monitor.replay.files import BadLineError, Record
    from stream_monitor.replay.tools import ReplayStats

__all__ = ["record", "replay"]


class OnError(StrEnum):
    """What a bad input line does."""

    skip = "skip"
    fail = "fail"


def _stop_on_signals(stop: asyncio.Event) -> None:
    """Ctrl-C and SIGTERM end the command cleanly (only possible in the main thread)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(RuntimeError, ValueError):  # not the main thread: embedded use
            loop.add_signal_handler(sig, stop.set)


def record(
    topic: Annotated[str, typer.Option(help="Topic to capture.")],
    out: Annotated[Path, typer.Option(help="Output file: .jsonl, or .jsonl.gz to compress.")],
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after this many records.")] = None,
    from_beginning: Annotated[
        bool, typer.Option(help="Start at the oldest record (default: only new ones).")
    ] = False,
    config: ConfigOption = None,
    sets: SetOption = None,
    bootstrap_servers: BootstrapOption = None,
) -> None:
    """Capture a live topic to JSONL: value, key, headers, partition, offset, timestamp."""
    from stream_monitor.replay.tools import record_topic

    with reported_errors():
        settings = load_from_flags(config, sets, bootstrap_servers)

        async def main() -> int:
            from stream_monitor.kafka.access import check_access

            await check_access(settings.kafka, {"--topic": topic}, existing=True)
            stop = asyncio.Event()
            _stop_on_signals(stop)
            with Progress(
                TextColumn("recording"),
                MofNCompleteColumn() if limit else TextColumn("{task.completed} records"),
                BarColumn() if limit else TextColumn(""),
                TimeElapsedColumn(),
                console=err_console,
                transient=True,
            ) as bar:
                task = bar.add_task("record", total=limit)
                return await record_topic(
                    settings,
                    topic,
                    out,
                    limit=limit,
                    from_beginning=from_beginning,
                    stop=stop,
                    progress=lambda n: bar.update(task, completed=n),
                )

        written = asyncio.run(main())
    err_console.print(f"recorded {written} records of {topic} to {out}", markup=False)


def replay(
    file: Annotated[Path, typer.Argument(help="JSONL, JSONL.gz or CSV (.csv, .csv.gz) file.")],
    topic: Annotated[str, typer.Option(help="Topic to produce to.")],
    rate: Annotated[float | None, typer.Option(help="Events per second, held steady.")] = None,
    speed: Annotated[
        float | None, typer.Option(help="Keep the recorded timing, this many times faster.")
    ] = None,
    loop: Annotated[bool, typer.Option(help="Start over at the end of the file.")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after this many records.")] = None,
    rekey: Annotated[bool, typer.Option(help="Key records by the event's model_id.")] = False,
    now: Annotated[bool, typer.Option(help="Rewrite event timestamps to the send time.")] = False,
    idempotent: Annotated[
        bool, typer.Option(help="Idempotent producer (needs broker support).")
    ] = True,
    on_error: Annotated[
        OnError, typer.Option(help="A bad line: report it and skip, or stop.")
    ] = OnError.skip,
    json_summary: Annotated[
        bool, typer.Option("--json", help="Print the final summary as JSON.")
    ] = False,
    config: ConfigOption = None,
    sets: SetOption = None,
    bootstrap_servers: BootstrapOption = None,
) -> None:
    """Produce a recorded or generated stream into Kafka at a rate or recorded speed."""
    from stream_monitor.replay.files import read_records
    from stream_monitor.replay.tools import ReplayStats, replay_records

    with reported_errors():
        settings = load_from_flags(config, sets, bootstrap_servers)
        if not file.is_file():
            raise StreamMonitorError(f"{file} does not exist or is not a file")
        stats = ReplayStats()

        def bad_line(error: BadLineError) -> None:
            if on_error is OnError.fail:
                raise error
            stats.bad_lines += 1
            err_console.print(f"skipped {error}", markup=False)

        def source() -> Iterator[Record]:
            return read_records(file, settings.replay, bad_line)

        async def main() -> None:
            from stream_monitor.kafka.access import check_access

            await check_access(settings.kafka, {"--topic": topic}, existing=True)
            stop = asyncio.Event()
            _stop_on_signals(stop)
            with Progress(
                TextColumn("replaying"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} ev/s"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            ) as bar:
                task = bar.add_task("replay", total=limit, rate="-")

                def show(s: ReplayStats) -> None:
                    rate_now = f"{s.sent / s.seconds:,.0f}" if s.seconds > 0 else "-"
                    bar.update(task, completed=s.sent, rate=rate_now)

                await replay_records(
                    settings,
                    source,
                    topic,
                    rate=rate,
                    speed=speed,
                    loop=loop,
                    limit=limit,
                    rekey=rekey,
                    stamp_now=now,
                    idempotent=idempotent,
                    stats=stats,
                    progress=show,
                    stop=stop,
                )

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
    summary = stats.summary()
    if json_summary:
        typer.echo(orjson.dumps(summary).decode())
    else:
        err_console.print(
            f"sent {summary['sent']}, failed {summary['failed']}, bad lines "
            f"{summary['bad_lines']} in {summary['seconds']} s: {summary['rate']} events/s; "
            f"produce latency p50 {summary['latency_ms_p50']} ms, "
            f"p99 {summary['latency_ms_p99']} ms",
            markup=False,
        )
    for error in stats.errors[:3]:
        err_console.print(f"delivery error: {error}", markup=False)
    if stats.failed:
        raise typer.Exit(1)
