"""``stream-monitor profile`` and ``stream-monitor backtest``: the monitors without Kafka."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from stream_monitor.cli.common import (
    ConfigOption,
    SetOption,
    err_console,
    load_from_flags,
    reported_errors,
)
from stream_monitor.offline.backtest import run_backtest
from stream_monitor.offline.profiling import profile_file

__all__ = ["backtest", "profile"]


def profile(
    data: Annotated[Path, typer.Argument(help="JSONL(.gz) of prediction events, or CSV.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model id to profile.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the profile.")],
    config: ConfigOption = None,
    sets: SetOption = None,
) -> None:
    """Build a reference profile (bins, quantiles, frequencies, missing rates) from DATA."""
    with reported_errors():
        settings = load_from_flags(config, sets)
        profile_, problems = profile_file(data, model, settings.model_spec(model))
        out.write_bytes(profile_.to_json() + b"\n")
    for problem in problems:
        err_console.print(f"skipped {problem}", markup=False)
    err_console.print(
        f"wrote {out}: {profile_.reference_id}, {profile_.sample_size} events, "
        f"{len(profile_.features)} features, prediction signal {profile_.prediction_signal}",
        markup=False,
    )


def backtest(
    events: Annotated[Path, typer.Argument(help="JSONL(.gz) of prediction and label events.")],
    config: ConfigOption = None,
    sets: SetOption = None,
    alerts: Annotated[
        Path | None, typer.Option("--alerts", help="Write alerts here instead of stdout.")
    ] = None,
    summaries: Annotated[
        Path | None, typer.Option("--summaries", help="Also write window summaries (JSONL).")
    ] = None,
    *,
    flush: Annotated[
        bool,
        typer.Option(
            help="At the end of the file, publish what labels revised since each model's last "
            "prediction and close the last, partial windows (--no-flush: what a worker would "
            "have published by then)."
        ),
    ] = True,
) -> None:
    """Run the monitors over a recorded stream; alerts as JSONL, a summary table on stderr."""
    with reported_errors(), ExitStack() as files:
        settings = load_from_flags(config, sets)
        alert_out = files.enter_context(alerts.open("wb")) if alerts else sys.stdout.buffer
        summary_out = files.enter_context(summaries.open("wb")) if summaries else None

        def write_alert(line: bytes) -> None:
            alert_out.write(line + b"\n")

        def write_summary(line: bytes) -> None:
            if summary_out is not None:
                summary_out.write(line + b"\n")

        report = run_backtest(settings, events, write_alert, write_summary, flush=flush)
        alert_out.flush()
    for error in report.errors:
        err_console.print(f"invalid {error}", markup=False)
    table = Table(title=f"backtest of {events.name}")
    for column in ("model", "events", "windows", "late", "alerts fired", "resolved"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for model_id, row in sorted(report.models.items()):
        table.add_row(
            model_id,
            str(row.events),
            str(row.windows),
            str(row.late),
            str(row.firing),
            str(row.resolved),
        )
    err_console.print(table)
    err_console.print(
        f"{report.predictions} predictions, {report.labels} labels, {report.invalid} invalid "
        f"lines of {report.lines}",
        markup=False,
    )
