"""exactly_once on the real Apache Kafka broker: transactions, zombie fencing, rollback, kill -9.

Every assertion is on what a ``read_committed`` consumer of the output topics sees: each expected
summary and alert id exactly once, nothing from an aborted or fenced transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from typer.testing import CliRunner

from stream_monitor.cli import app
from stream_monitor.config import Settings
from stream_monitor.devtools.broker import process
from stream_monitor.errors import StreamMonitorError
from stream_monitor.runtime.worker import Worker

from .runtime_helpers import isolated_settings, produce, read_all
from .test_failures import (
    EVENTS,
    environment,
    kill_9_mid_stream_then_restart,
    reference_run,
    stream,
    worker_process,
)

EXACTLY_ONCE = {"guarantee": "exactly_once", "commit_interval": 0.3, "batch_max_records": 200}


async def committed_outputs(bootstrap: str, settings: Settings) -> tuple[list[bytes], list[str]]:
    """Summaries and alert ids as a read_committed consumer sees them, repeats included."""
    summaries = [
        r.value for r in await read_all(bootstrap, settings.topics.metrics, committed=True)
    ]
    alerts = [
        orjson.loads(r.value)["alert_id"]
        for r in await read_all(bootstrap, settings.topics.alerts, committed=True)
    ]
    return summaries, alerts


async def wait_committed(
    bootstrap: str, settings: Settings, count: int, budget: float = 90
) -> None:
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        metrics = await read_all(bootstrap, settings.topics.metrics, idle=0.5, committed=True)
        # distinct: a duplicate must not end the wait early (assert_exactly_once reports it)
        if len({record.value for record in metrics}) >= count:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"fewer than {count} distinct committed summaries after {budget} s")


def assert_exactly_once(
    got: tuple[list[bytes], list[str]], expected: tuple[set[bytes], set[str]]
) -> None:
    summaries, alerts = got
    expected_summaries, expected_alerts = expected
    assert [v for v, n in Counter(summaries).items() if n > 1] == []
    assert [a for a, n in Counter(alerts).items() if n > 1] == []
    assert set(summaries) == expected_summaries
    assert set(alerts) == expected_alerts


async def test_a_failed_transaction_is_rolled_back_and_nothing_repeats(
    kafka_bootstrap: str,
) -> None:
    expected = await reference_run(kafka_bootstrap)
    assert expected[1]
    settings = isolated_settings(kafka_bootstrap, processing=EXACTLY_ONCE)
    worker = Worker(settings)
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.ready.wait(), 60)
        await produce(kafka_bootstrap, settings.topics.predictions, stream()[: EVENTS // 2])
        await wait_committed(kafka_bootstrap, settings, 2)
        # The next commit of partition 0 fails as if the broker dropped the connection.
        producer: Any = worker.partitions[0].producer
        real_commit = producer.commit_transaction
        failed: list[bool] = []

        async def failing_commit() -> None:
            if not failed:
                failed.append(True)
                raise KafkaConnectionError("injected: connection lost during EndTxn")
            await real_commit()

        producer.commit_transaction = failing_commit
        await produce(kafka_bootstrap, settings.topics.predictions, stream()[EVENTS // 2 :])
        await wait_committed(kafka_bootstrap, settings, len(expected[0]))
        await asyncio.sleep(1)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
    assert failed, "the injected failure was never reached"
    assert worker.stats.rollbacks == 1
    assert worker.stats.transactions > 2
    assert_exactly_once(await committed_outputs(kafka_bootstrap, settings), expected)


async def test_a_zombie_is_fenced_and_commits_nothing_more(kafka_bootstrap: str) -> None:
    settings = isolated_settings(kafka_bootstrap, processing=EXACTLY_ONCE)
    events = stream()
    worker = Worker(settings)
    task = asyncio.create_task(worker.run())
    usurper: AIOKafkaProducer | None = None
    try:
        await asyncio.wait_for(worker.ready.wait(), 60)
        await produce(kafka_bootstrap, settings.topics.predictions, events[: EVENTS // 2])
        await wait_committed(kafka_bootstrap, settings, 4)
        await asyncio.sleep(1)  # let the open transactions commit
        inputs = await read_all(kafka_bootstrap, settings.topics.predictions, idle=0.5)
        on_zero = {r.key for r in inputs if r.partition == 0}
        before = await read_all(kafka_bootstrap, settings.topics.metrics, committed=True)
        # A new owner of partition 0 (as after a rebalance this worker did not notice) starts
        # a producer with the same transactional id: this worker is now a zombie for it.
        usurper = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap,
            transactional_id=worker.assignment.transactional_id(0),
        )
        await usurper.start()
        await produce(kafka_bootstrap, settings.topics.predictions, events[EVENTS // 2 :])
        deadline = time.monotonic() + 60
        while 0 in worker.partitions and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        await asyncio.sleep(3)  # partition 1 keeps working meanwhile
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
        if usurper is not None:
            await usurper.stop()
    assert 0 not in worker.partitions, "the zombie kept partition 0"
    after = await read_all(kafka_bootstrap, settings.topics.metrics, committed=True)
    zero_before = [r.value for r in before if r.key in on_zero]
    zero_after = [r.value for r in after if r.key in on_zero]
    assert zero_after == zero_before  # nothing the zombie did after the fence is visible
    assert len([r for r in after if r.key not in on_zero]) > len(
        [r for r in before if r.key not in on_zero]
    )  # while the partition it still owns went on


async def test_kill_9_under_exactly_once_gives_every_alert_exactly_once(
    kafka_bootstrap: str,
) -> None:
    expected = await reference_run(kafka_bootstrap)
    settings = isolated_settings(kafka_bootstrap, processing=EXACTLY_ONCE)
    env = environment(settings)
    env["STREAM_MONITOR_PROCESSING__GUARANTEE"] = "exactly_once"
    env["STREAM_MONITOR_PROCESSING__COMMIT_INTERVAL"] = "0.3"
    code = await kill_9_mid_stream_then_restart(
        kafka_bootstrap,
        settings,
        lambda: worker_process(env),
        lambda n: wait_committed(kafka_bootstrap, settings, n),
        len(expected[0]),
    )
    assert code == 0
    assert_exactly_once(await committed_outputs(kafka_bootstrap, settings), expected)


def test_exactly_once_on_a_broker_without_transactions_fails_at_startup() -> None:
    """Tansu lists the transaction APIs but refuses transactional producers."""
    runner = CliRunner()
    port = process.free_port()
    started = runner.invoke(app, ["broker", "start", "--kind", "tansu", "--port", str(port)])
    if started.exit_code != 0:
        pytest.fail(f"tansu did not start: {started.output}")
    try:
        settings = isolated_settings(f"127.0.0.1:{port}", processing={"guarantee": "exactly_once"})
        with pytest.raises(StreamMonitorError, match="cannot run Kafka transactions") as caught:
            asyncio.run(Worker(settings).run())
        assert "processing.guarantee: at_least_once" in str(caught.value)
        result = runner.invoke(
            app,
            [
                "run",
                "--set",
                "processing.guarantee=exactly_once",
                "--bootstrap-servers",
                f"127.0.0.1:{port}",
            ],
        )
        assert result.exit_code == 1
        assert "cannot run Kafka transactions" in result.output
        assert "Traceback" not in result.output
    finally:
        runner.invoke(app, ["broker", "stop", "--port", str(port)])
