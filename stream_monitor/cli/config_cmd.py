"""``stream-monitor config check|show|docs``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer
import yaml

from stream_monitor.cli.common import (
    BootstrapOption,
    ConfigOption,
    SetOption,
    err_console,
    load_from_flags,
    reported_errors,
)
from stream_monitor.config import load_settings
from stream_monitor.config.docs import render_configuration_doc

__all__ = ["config_app"]

config_app = typer.Typer(help="Validate and inspect configuration.", no_args_is_help=True)


@config_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Config file to validate (YAML, TOML or JSON).")],
) -> None:
    """Validate FILE (with the environment applied); exit 2 listing every problem."""
    with reported_errors():
        settings = load_settings(file)
    models = len(settings.models)
    err_console.print(f"{file}: OK ({models} model{'s' if models != 1 else ''} configured)")


@config_app.command("show")
def show(
    config: ConfigOption = None,
    sets: SetOption = None,
    bootstrap_servers: BootstrapOption = None,
    fmt: Annotated[
        Literal["yaml", "json"], typer.Option("--format", help="Output format.")
    ] = "yaml",
) -> None:
    """Print the effective configuration (defaults < file < environment < flags), secrets masked."""
    with reported_errors():
        settings = load_from_flags(config, sets, bootstrap_servers)
    data = settings.model_dump(mode="json")
    if fmt == "json":
        typer.echo(json.dumps(data, indent=2))
    else:
        typer.echo(yaml.safe_dump(data, sort_keys=False), nl=False)


@config_app.command("docs", hidden=True)
def docs(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here.")] = None,
) -> None:
    """Print (or write) the configuration reference generated from the settings models."""
    text = render_configuration_doc()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
