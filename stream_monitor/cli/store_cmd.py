"""``stream-monitor store``: keep the window summaries and alerts in SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
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

__all__ = ["store"]

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB (default: history.database; "
        "the password is better given as STREAM_MONITOR_HISTORY__DATABASE).",
    ),
]


def store(
    config: ConfigOption = None,
    sets: SetOption = None,
    bootstrap_servers: BootstrapOption = None,
    database: DatabaseOption = None,
    once: Annotated[
        bool, typer.Option("--once", help="Stop once the topics are read to their end.")
    ] = False,
) -> None:
    """Consume the metrics and alerts topics into the history database (idempotent)."""
    from stream_monitor.errors import ConfigError, ConfigProblem
    from stream_monitor.history.sql import open_history
    from stream_monitor.history.writer import HistoryWriter
    from stream_monitor.logs import configure_logging

    with reported_errors():
        extra = [] if database is None else [f"history.database={database}"]
        settings = load_from_flags(config, [*(sets or []), *extra], bootstrap_servers)
        configure_logging(settings.logging)
        url = settings.history.database
        if url is None:
            raise ConfigError(
                [
                    ConfigProblem(
                        "history.database",
                        "",
                        "is not set: pass --database sqlite:///history.db (or "
                        "postgresql://...), or set STREAM_MONITOR_HISTORY__DATABASE",
                    )
                ]
            )
        history = open_history(url.get_secret_value())
        writer = HistoryWriter(settings, history)
        err_console.print(
            f"storing {settings.topics.metrics} and {settings.topics.alerts} into "
            f"{history.where}; Ctrl-C stops",
            markup=False,
        )

        async def main() -> dict[str, Any]:
            from stream_monitor.kafka.access import check_settings

            await check_settings(settings, "alerts", "metrics")
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            stats = await writer.run(stop, once=once)
            return vars(stats)

        try:
            stats = asyncio.run(main())
        finally:
            history.close()
        counts = ", ".join(f"{k} {v}" for k, v in stats.items())
        err_console.print(f"stored: {counts}", markup=False)
