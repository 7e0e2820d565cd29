"""The chaos suite's short version on the real broker: a seeded schedule of SIGKILLs and
SIGTERMs (some in a worker's first seconds, some during a rebalance), one to three workers, a
broker restart and a failing then stalling webhook change no output (``benchmarks.chaos`` is the
long run: 2,000,000 events over 20 models, recorded in docs/benchmarks.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream_monitor.devtools.bench.chaos import ChaosOptions, run_chaos
from stream_monitor.devtools.broker import running_brokers


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
async def test_a_chaos_schedule_changes_no_output(
    kafka_bootstrap: str, tmp_path: Path, guarantee: str
) -> None:
    port = int(kafka_bootstrap.rsplit(":", 1)[1])
    # The broker `make test` started is restarted once mid-run; one started elsewhere is not.
    broker = next((b for b in running_brokers() if b.port == port and b.kind == "kafka"), None)
    options = ChaosOptions(
        seed=7 if guarantee == "at_least_once" else 8,
        events=16_000,
        models=6,
        guarantee=guarantee,
        label_delay_ms=20_000,
        malformed_every=2_000,
        produce_rate=1_600.0,
        broker_down=2.0,
    )
    report = await run_chaos(options, broker, kafka_bootstrap, tmp_path)
    assert sum(report.kills.values()) >= 1, report.schedule
    assert report.expected_alerts > 0
    assert report.expected_windows > 0
    assert report.malformed == report.dead_letters > 0
    assert report.failures == 0, (report.schedule, report.examples, report)
