"""Helpers shared by CLI commands: loading settings from flags and reporting errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from stream_monitor.config import Settings, load_settings, parse_overrides
from stream_monitor.errors import BrokerError, ConfigError, StreamMonitorError

__all__ = [
    "BootstrapOption",
    "ConfigOption",
    "SetOption",
    "err_console",
    "load_from_flags",
    "reported_errors",
]

err_console = Console(stderr=True, highlight=False, soft_wrap=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Config file (YAML, TOML or JSON). Default: $STREAM_MONITOR_CONFIG."
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override one setting, e.g. --set kafka.group_id=g1 (repeatable)."),
]
BootstrapOption = Annotated[
    str | None, typer.Option("--bootstrap-servers", help="Override kafka.bootstrap_servers.")
]


def load_from_flags(
    config: Path | None, sets: list[str] | None, bootstrap_servers: str | None = None
) -> Settings:
    """Settings with command-line flags on top of environment, file and defaults."""
    overrides: dict[str, Any] = parse_overrides(sets or [])
    if bootstrap_servers is not None:
        overrides.setdefault("kafka", {})["bootstrap_servers"] = bootstrap_servers
    return load_settings(config, overrides)


def _report(title: str, exc: Exception) -> None:
    err_console.print(f"[bold red]{title}[/]", end=" ")
    err_console.print(str(exc), markup=False)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn our errors into a clear message and an exit code (2 config, 1 otherwise)."""
    try:
        yield
    except ConfigError as exc:
        _report("invalid configuration:", exc)
        raise typer.Exit(2) from None
    except BrokerError as exc:
        _report("broker error:", exc)
        raise typer.Exit(1) from None
    except StreamMonitorError as exc:
        _report("error:", exc)
        raise typer.Exit(1) from None
