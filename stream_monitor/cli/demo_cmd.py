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

import orjson
import typer
from aiokafka import AIOKafkaConsumer
from rich.console import Console

from stream_monitor.broker import start_tansu, stop
from stream_monitor.cli.common import err_console, reported_errors
from stream_monitor.cli.stream_cmd import alert_line
from stream_monitor.config import Settings, load_settings
from stream_monitor.dashboard.app import serve
from stream_monitor.kafka.connection import client_kwargs
from stream_monitor.logs import configure_logging
from stream_monitor.runtime.topics import ensure_topics
from stream_monitor.runtime.worker import Worker

__all__ = ["demo"]


async def _show_alerts(settings: Settings, console: Console) -> None:
    consumer = AIOKafkaConsumer(
        settings.topics.alerts,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **client_kwargs(settings.kafka),
    )
    await consumer.start()
    try:
        async for record in consumer:
            console.print(alert_line(orjson.loads(record.value)), markup=True)
    finally:
        await consumer.stop()


async def _demo(
    settings: Settings,
    console: Console,
    events: int,
    rate: float,
    duration: float | None,
    dashboard_port: int,
) -> None:
    await ensure_topics(settings)
    worker = Worker(settings)
    tasks = [
        asyncio.create_task(worker.run(), name="worker"),
        asyncio.create_task(_show_alerts(settings, console), name="alerts"),
    ]
    await asyncio.wait_for(worker.ready.wait(), 60)
    runner, _, bound = await serve(settings, settings.http.host, dashboard_port)
    console.print(
        f"[bold]dashboard[/]: http://{settings.http.host}:{bound}/  "
        f"(worker metrics: http://{settings.http.host}:{worker.http_port}/metrics)",
        markup=True,
    )
    console.print(
        f"[bold]monitor ready[/]: simulating 3 models at {rate:.0f} events/s; "
        f"covariate drift from event {events // 3}, back to normal at {2 * events // 3}",
        markup=True,
    )
    from stream_monitor.simulator import simulate  # noqa: PLC0415 - river, only for the demo

    sim = asyncio.create_task(
        simulate(
            settings,
            models=3,
            events=events,
            rate=rate,
            scenario="covariate",
            drift_at=events // 3,
            drift_until=2 * events // 3,
            label_delay=100,
        )
    )
    try:
        if duration is not None:
            await asyncio.sleep(duration)
        else:
            await asyncio.Event().wait()  # until Ctrl-C
    finally:
        await runner.cleanup()
        worker.stop()
        sim.cancel()
        await asyncio.gather(sim, return_exceptions=True)
        await asyncio.wait_for(tasks[0], 30)
        tasks[1].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


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
                asyncio.run(_demo(settings, console, events, rate, duration, dashboard_port))
        finally:
            stop(broker)
            err_console.print("demo stopped: broker, monitor and simulator are down")
