"""`stream-monitor bench` end to end on the real broker (a small run: it checks what the
benchmark reports, not how fast anything is)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
from aiokafka.admin import AIOKafkaAdminClient
from typer.testing import CliRunner

from stream_monitor.cli import app

runner = CliRunner()


async def _bench_topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {name for name in await admin.list_topics() if name.startswith("bench-")}
    finally:
        await admin.close()


async def test_bench_reports_throughput_lag_rss_latency_and_peers(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    before = await _bench_topics(kafka_bootstrap)
    result = await asyncio.to_thread(
        runner.invoke,
        app,
        [
            "bench",
            "--events",
            "6000",
            "--partitions",
            "2",
            "--compare",
            "--latency-seconds",
            "8",
            "--latency-fraction",
            "0.2",
            "--window-events",
            "100",
            "--out",
            str(out),
            "--bootstrap-servers",
            kafka_bootstrap,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "raw aiokafka consume-only" in result.output
    figures = orjson.loads(out.read_bytes())
    assert figures["loaded"] == 6000
    assert figures["monitor_rate"] > 0
    assert figures["raw_consume_rate"] > 0
    assert figures["core_rate"] > 0
    assert figures["lag"][-1][1] == 0  # every loaded event was processed and committed
    assert max(lag for _, lag in figures["lag"]) <= 6000
    assert all(mb >= 0 for _, mb in figures["rss_mb"])
    assert max(mb for _, mb in figures["rss_mb"]) > 20  # a live worker was measured
    latency = figures["summary_latency_ms"]
    assert latency["n"] > 0  # windows closed during the latency phase and were read back
    assert latency["p50"] <= latency["p95"] <= latency["p99"]
    assert figures["ratios"]["monitor/raw_consume"] is not None
    # the run's topics (inputs, outputs, state, the Faust peer's) are gone from the broker
    assert await _bench_topics(kafka_bootstrap) == before
