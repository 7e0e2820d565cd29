"""``stream-monitor dashboard``: the live web dashboard over the alerts and metrics topics."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated, Any

import typer

from stream_monitor.cli.common import (
    BootstrapOption,
    ConfigOption,
    SetOption,
    err_console,
    load_from_flags,
    reported_errors,
)

__all__ = ["dashboard"]


def dashboard(
    config: ConfigOption = None,
    sets: SetOption = None,
    bootstrap_servers: BootstrapOption = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default: http.dashboard_port).", min=0, max=65535)
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to bind (default: http.host, 127.0.0.1). Off loopback "
            "http.auth_token is required."
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="History database written by `stream-monitor store` (sqlite:///PATH or "
            "postgresql://...; default: history.database).",
        ),
    ] = None,
) -> None:
    """Serve the dashboard: models, drift, performance, quality and alerts, live."""
    from stream_monitor.dashboard.app import plotly_js, serve
    from stream_monitor.logs import configure_logging

    with reported_errors():
        overrides: dict[str, Any] = {}
        if port is not None:
            overrides["http.dashboard_port"] = str(port)
        if host is not None:
            overrides["http.host"] = host
        if database is not None:
            overrides["history.database"] = database
        extra = [f"{k}={v}" for k, v in overrides.items()]
        settings = load_from_flags(config, [*(sets or []), *extra], bootstrap_servers)
        configure_logging(settings.logging)
        plotly_js()  # fail now, not on the first page load

        async def main() -> None:
            from stream_monitor.kafka.access import check_settings

            await check_settings(settings, "alerts", "metrics")
            http = settings.http
            runner, _, bound = await serve(settings, http.host, http.dashboard_port)
            err_console.print(
                f"dashboard on http://{http.host}:{bound}/ (alerts: {settings.topics.alerts}, "
                f"metrics: {settings.topics.metrics}); Ctrl-C stops",
                markup=False,
            )
            done = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, done.set)
            try:
                await done.wait()
            finally:
                await runner.cleanup()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
