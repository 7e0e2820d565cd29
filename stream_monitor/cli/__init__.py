"""The ``stream-monitor`` command line (Typer)."""

from __future__ import annotations

from typing import Annotated

import typer

import stream_monitor
from stream_monitor.cli.bench_cmd import bench
from stream_monitor.cli.broker_cmd import broker_app
from stream_monitor.cli.config_cmd import config_app
from stream_monitor.cli.dashboard_cmd import dashboard
from stream_monitor.cli.demo_cmd import demo
from stream_monitor.cli.offline_cmd import backtest, profile
from stream_monitor.cli.replay_cmd import record, replay
from stream_monitor.cli.schema_cmd import schema
from stream_monitor.cli.store_cmd import store
from stream_monitor.cli.stream_cmd import ingest, run, simulate_cmd, tail

__all__ = ["app", "main"]

app = typer.Typer(
    name="stream-monitor",
    help="Watch ML models in production through Kafka: drift, performance and quality alerts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(config_app, name="config")
app.add_typer(broker_app, name="broker")
app.command("schema")(schema)
app.command("profile")(profile)
app.command("backtest")(backtest)
app.command("run")(run)
app.command("ingest")(ingest)
app.command("simulate")(simulate_cmd)
app.command("tail")(tail)
app.command("demo")(demo)
app.command("dashboard")(dashboard)
app.command("record")(record)
app.command("replay")(replay)
app.command("bench")(bench)
app.command("store")(store)


def _version(value: bool) -> None:
    if value:
        typer.echo(stream_monitor.__version__)
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    """stream-monitor: ML model monitoring on Kafka streams."""


def main() -> None:
    """Console-script entry point."""
    app()
