"""What ``stream-monitor demo`` runs once the embedded broker is up: topics, a worker, the
dashboard, the simulator, and the alerts printed as they arrive. Imported only by the demo.
"""

from __future__ import annotations

import asyncio

import orjson
from aiokafka import AIOKafkaConsumer
from rich.console import Console

from stream_monitor.cli.stream_cmd import alert_line
from stream_monitor.config import Settings
from stream_monitor.dashboard.app import serve
from stream_monitor.devtools.simulator import simulate
from stream_monitor.kafka.connection import client_kwargs
from stream_monitor.runtime.topics import ensure_topics
from stream_monitor.runtime.worker import Worker

__all__ = ["run_demo"]


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


async def run_demo(
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
