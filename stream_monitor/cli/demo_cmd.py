"""``stream-monitor demo``: the main job on an embedded broker, in one command.

Starts Tansu, creates the topics, runs a monitor worker and the simulator (drift injected
part-way), and prints alerts from the alerts topic as they arrive. Ctrl-C stops everything it
started. Tansu has no transactions, so the demo runs ``at_least_once``.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from stream_monitor.cli.common import err_console, reported_errors
from stream_monitor.config import load_settings
from stream_monitor.devtools.broker import start_tansu, stop

__all__ = ["demo"]


def demo(
    port: Annotated[int, typer.Option(help="Port of the embedded broker.")] = 19192,
    config: Annotated[Path, typer.Option(help="Demo configuration.")] = Path("config/demo.yaml"),
    events: Annotated[int, typer.Option(help="Predictions to simulate.")] = 45_000,
    rate: Annotated[float, typer.Option(help="Events per second.")] = 750.0,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
    dashboard_port: Annotated[int, typer.Option(help="Port of the dashboard.")] = 8050,
) -> None:
    """Embedded broker + simulator with drift + monitor + dashboard; Ctrl-C stops."""
    from stream_monitor.cli.demo_run import run_demo
    from stream_monitor.logs import configure_logging

    console = Console(highlight=False, soft_wrap=True)
    with reported_errors():
        broker = start_tansu(port)
        try:
            settings = load_settings(config, {"kafka": {"bootstrap_servers": broker.bootstrap}})
            configure_logging(settings.logging)
            err_console.print(
                f"embedded Tansu broker on {broker.bootstrap} (no transactions: the demo runs "
                "at_least_once); alerts also go to .demo/alerts.jsonl; Ctrl-C stops everything",
                markup=False,
            )
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(run_demo(settings, console, events, rate, duration, dashboard_port))
        finally:
            stop(broker)
            err_console.print("demo stopped: broker, monitor and simulator are down")
