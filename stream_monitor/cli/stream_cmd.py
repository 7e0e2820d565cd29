"""``stream-monitor run``, ``simulate`` and ``tail``: the streaming commands."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from stream_monitor.cli.common import (
    BootstrapOption,
    ConfigOption,
    SetOption,
    err_console,
    load_from_flags,
    reported_errors,
)

__all__ = ["alert_line", "run", "simulate_cmd", "tail"]


def run(
    config: ConfigOption = None,
    sets: SetOption = None,
    bootstrap_servers: BootstrapOption = None,
) -> None:
    """Run a monitor worker: consume predictions and labels, publish alerts (Ctrl-C stops)."""
    from stream_monitor.integrations.sources import OipBridge
    from stream_monitor.logs import configure_logging
    from stream_monitor.offline.profiling import load_references
    from stream_monitor.runtime.worker import Worker, steady_collector

    with reported_errors():
        settings = load_from_flags(config, sets, bootstrap_servers)
        configure_logging(settings.logging)
        references = dict(load_references(settings))
        worker = Worker(settings, references)
        bridges = [OipBridge(settings, spec, worker.metrics) for spec in settings.sources]

        def stop() -> None:
            worker.stop()
            for bridge in bridges:
                bridge.stop()

        def failed(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is not None:
                stop()  # a source that fails stops the worker; the error is reported below

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop)
            sources = [asyncio.create_task(bridge.run()) for bridge in bridges]
            for task in sources:
                task.add_done_callback(failed)
            try:
                await worker.run()
            finally:
                stop()
                await asyncio.gather(*sources)

        with steady_collector():
            asyncio.run(main())
    if worker.exit_code:  # stopped with work it could not commit in time (logged)
        raise typer.Exit(worker.exit_code)


def simulate_cmd(
    config: ConfigOption = None,
    sets: SetOption = None,
    bootstrap_servers: BootstrapOption = None,
    models: Annotated[int, typer.Option(min=1, help="Number of models.")] = 3,
    events: Annotated[int, typer.Option(min=1, help="Predictions to send.")] = 20_000,
    rate: Annotated[float, typer.Option(help="Events per second (0: as fast as possible).")] = 0,
    scenario: Annotated[
        str, typer.Option(help="none, covariate, concept, missing or label_delay.")
    ] = "covariate",
    drift_at: Annotated[int, typer.Option(help="Event count where the scenario starts.")] = 10_000,
    drift_until: Annotated[int | None, typer.Option(help="Event count where it ends.")] = None,
    label_delay: Annotated[int, typer.Option(help="Labels follow after this many events.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed: same arguments, same stream.")] = 1,
) -> None:
    """Act as model servers: send predictions and delayed labels, with drift part-way."""
    if scenario not in ("none", "covariate", "concept", "missing", "label_delay"):
        err_console.print(f"unknown scenario {scenario!r}", markup=False)
        raise typer.Exit(2)
    with reported_errors():
        settings = load_from_flags(config, sets, bootstrap_servers)

        async def main() -> int:
            from stream_monitor.devtools.simulator import Scenario, simulate
            from stream_monitor.runtime.topics import ensure_topics

            await ensure_topics(settings)
            chosen: Scenario = scenario  # type: ignore[assignment]
            return await simulate(
                settings,
                models=models,
                events=events,
                rate=rate,
                scenario=chosen,
                drift_at=drift_at,
                drift_until=drift_until,
                label_delay=label_delay,
                seed=seed,
            )

        sent = asyncio.run(main())
    err_console.print(f"sent {sent} predictions to {settings.topics.predictions}")


_COLOURS = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def alert_line(alert: dict[str, Any]) -> str:
    """One alert as a rich-markup line, coloured by severity (green once resolved).

    The summary comes from events (model ids, feature names): it is escaped, never markup.
    """
    status, severity = str(alert.get("status", "?")), str(alert.get("severity", "?"))
    colour = "green" if status == "resolved" else _COLOURS.get(severity, "white")
    return f"[{colour}]{status.upper():8} {severity:8}[/] {escape(str(alert.get('summary', '')))}"


def tail(
    config: ConfigOption = None,
    sets: SetOption = None,
    bootstrap_servers: BootstrapOption = None,
    severity: Annotated[str | None, typer.Option(help="Only this severity.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model id.")] = None,
    status: Annotated[str | None, typer.Option(help="firing or resolved.")] = None,
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest alert.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON alert per line.")] = False,
    limit: Annotated[int | None, typer.Option(help="Stop after this many alerts.")] = None,
) -> None:
    """Follow the alerts topic: live, coloured by severity, with filters."""
    console = Console(highlight=False, soft_wrap=True)
    with reported_errors():
        settings = load_from_flags(config, sets, bootstrap_servers)

        async def main() -> None:
            from aiokafka import AIOKafkaConsumer

            from stream_monitor.kafka.access import check_settings
            from stream_monitor.kafka.connection import client_kwargs

            await check_settings(settings, "alerts")
            consumer = AIOKafkaConsumer(
                settings.topics.alerts,
                enable_auto_commit=False,
                auto_offset_reset="earliest" if from_beginning else "latest",
                **client_kwargs(settings.kafka),
            )
            await consumer.start()
            shown = 0
            try:
                async for record in consumer:
                    alert = orjson.loads(record.value)
                    if (
                        (severity and alert.get("severity") != severity)
                        or (model and alert.get("model_id") != model)
                        or (status and alert.get("status") != status)
                    ):
                        continue
                    if as_json:
                        typer.echo(record.value.decode())
                    else:
                        console.print(alert_line(alert), markup=True)
                    shown += 1
                    if limit is not None and shown >= limit:
                        return
            finally:
                await consumer.stop()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())


def ingest(
    config: ConfigOption = None,
    sets: SetOption = None,
    bootstrap_servers: BootstrapOption = None,
    port: Annotated[int, typer.Option(help="Port to serve on.", min=0, max=65535)] = 8060,
    host: Annotated[
        str | None,
        typer.Option(help="Address (default: http.host). Off loopback http.auth_token is needed."),
    ] = None,
    model_id: Annotated[
        str | None,
        typer.Option(help="Model id when the CloudEvents carry no inferenceservicename."),
    ] = None,
    features: Annotated[
        str | None, typer.Option(help="Feature names of list rows, comma-separated.")
    ] = None,
) -> None:
    """Accept KServe's payload logger (CloudEvents) and produce prediction events (Ctrl-C stops)."""
    from stream_monitor.integrations.ingest import Ingest, serve_ingest
    from stream_monitor.logs import configure_logging, get_logger
    from stream_monitor.runtime.topics import ensure_topics

    with reported_errors():
        extra = [f"http.host={host}"] if host is not None else []
        settings = load_from_flags(config, [*(sets or []), *extra], bootstrap_servers)
        configure_logging(settings.logging)
        names = [n.strip() for n in features.split(",") if n.strip()] if features else None

        async def main() -> None:
            await ensure_topics(settings)
            service = Ingest(settings, model_id=model_id, features=names)
            runner, bound = await serve_ingest(service, settings.http.host, port)
            get_logger("stream_monitor.integrations.ingest").info(
                "ingest ready", url=f"http://{settings.http.host}:{bound}/"
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            try:
                await stop.wait()
            finally:
                await runner.cleanup()
                await service.stop()

        asyncio.run(main())
