"""Failures against the real broker: kill -9 and restart, a worker joining and leaving."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest

from stream_monitor.config import Settings
from stream_monitor.config.sinks import LogSinkSpec
from stream_monitor.devtools.broker import restart, running_brokers, start_kafka, stop
from stream_monitor.devtools.broker.process import free_port
from stream_monitor.events.alerts import AlertEvent
from stream_monitor.monitor.model_monitor import ModelMonitor
from stream_monitor.runtime.worker import Worker
from stream_monitor.sinks import ListSink

from .runtime_helpers import isolated_settings, produce, read_all, run_worker_until, trickle

T0 = 1_795_800_000_000
MODELS = 4
EVENTS = 4_000


def stream() -> list[tuple[bytes, bytes]]:
    """Four models; the amount of two of them shifts half way."""
    out = []
    for i in range(EVENTS):
        rng = random.Random(i)
        model = f"model-{i % MODELS}"
        shift = 15 if i >= EVENTS // 2 and i % MODELS < 2 else 0
        event = {
            "event_id": f"e{i}",
            "model_id": model,
            "timestamp": T0 + i * 100,
            "features": {"amount": rng.gauss(50 + shift, 10), "country": rng.choice("ABC")},
            "prediction": int(rng.random() < 0.3),
            "score": rng.random(),
        }
        out.append((model.encode(), orjson.dumps(event)))
    return out


async def reference_run(bootstrap: str) -> tuple[set[bytes], set[str]]:
    """Summaries and alert ids of one uninterrupted worker."""
    settings = isolated_settings(bootstrap)
    worker = Worker(settings)
    feeder = asyncio.create_task(_feed_when_ready(worker, settings, stream()))
    await run_worker_until(worker, lambda: worker.stats.consumed >= EVENTS)
    await feeder
    return await outputs(bootstrap, settings)


async def _feed_when_ready(
    worker: Worker, settings: Settings, events: list[tuple[bytes, bytes]]
) -> None:
    await asyncio.wait_for(worker.ready.wait(), 60)
    await produce(settings.kafka.bootstrap_servers, settings.topics.predictions, events)


async def outputs(bootstrap: str, settings: Settings) -> tuple[set[bytes], set[str]]:
    summaries = {r.value for r in await read_all(bootstrap, settings.topics.metrics)}
    alerts = {
        orjson.loads(r.value)["alert_id"] for r in await read_all(bootstrap, settings.topics.alerts)
    }
    return summaries, alerts


def environment(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_MONITOR_")}
    env.update(
        {
            "STREAM_MONITOR_SINKS": '[{"type": "kafka"}]',
            "STREAM_MONITOR_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "STREAM_MONITOR_KAFKA__GROUP_ID": settings.kafka.group_id,
            "STREAM_MONITOR_TOPICS__PREDICTIONS": settings.topics.predictions,
            "STREAM_MONITOR_TOPICS__LABELS": settings.topics.labels,
            "STREAM_MONITOR_TOPICS__ALERTS": settings.topics.alerts,
            "STREAM_MONITOR_TOPICS__PARTITIONS": "2",
            "STREAM_MONITOR_PROCESSING__CHECKPOINT_INTERVAL": "0.5",
            "STREAM_MONITOR_PROCESSING__BATCH_MAX_RECORDS": "200",
            "STREAM_MONITOR_MONITORING__DEFAULT": orjson.dumps(
                {
                    "warmup_events": 300,
                    "window": {"kind": "count", "events": 300},
                }
            ).decode(),
            "STREAM_MONITOR_LOGGING__FORMAT": "json",
            "STREAM_MONITOR_HTTP__PORT": "0",
        }
    )
    return env


async def wait_for_summaries(
    bootstrap: str, settings: Settings, count: int, budget: float = 90
) -> None:
    """Wait until ``count`` distinct summaries are on the metrics topic: at-least-once replays
    (after a rollback or a kill) write duplicates, so records are not summaries."""
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        records = await read_all(bootstrap, settings.topics.metrics, idle=0.5)
        if len({r.value for r in records}) >= count:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"fewer than {count} summaries after {budget} s")


def worker_process(env: dict[str, str], *, logged: bool = False) -> subprocess.Popen[bytes]:
    """`stream-monitor run` as a real process (to kill -9); ``logged`` keeps its output."""
    return subprocess.Popen(
        [sys.executable, "-m", "stream_monitor", "run"],
        env=env,
        stdout=subprocess.PIPE if logged else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if logged else subprocess.DEVNULL,
    )


async def kill_9_mid_stream_then_restart(
    bootstrap: str,
    settings: Settings,
    start: Callable[[], subprocess.Popen[bytes]],
    wait: Callable[[int], Awaitable[None]],
    final: int,
    *,
    warmup: float = 3.0,
    pause: float = 0.25,
) -> int | None:
    """Start a worker, feed the stream slowly, kill -9 it after ~a third, start another one,
    wait until ``wait(final)`` holds, stop it with SIGTERM; returns its exit code."""
    first = start()
    try:
        await asyncio.sleep(warmup)
        feeder = asyncio.create_task(
            trickle(bootstrap, settings.topics.predictions, stream(), pause=pause)
        )
        await wait(4)  # mid-stream: about a third of the summaries
        assert not feeder.done(), "the stream ended before the kill: not mid-stream"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    second = start()
    try:
        await feeder
        await wait(final)
        await asyncio.sleep(2)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(30)
        except subprocess.TimeoutExpired:
            second.kill()
            second.wait()
    return second.returncode


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="mid-stream"),
        # Offsets never get ahead of state: a worker that committed batches but never
        # checkpointed must not leave a restart to resume there with empty monitors.
        pytest.param(
            {"CHECKPOINT_INTERVAL": "600", "COMMIT_INTERVAL": "0.1"},
            id="before-the-first-checkpoint",
        ),
    ],
)
async def test_kill_9_then_restart_loses_nothing(
    kafka_bootstrap: str, overrides: dict[str, str]
) -> None:
    expected_summaries, expected_alerts = await reference_run(kafka_bootstrap)
    assert expected_alerts
    settings = isolated_settings(kafka_bootstrap)
    env = environment(settings)
    env.update({f"STREAM_MONITOR_PROCESSING__{k}": v for k, v in overrides.items()})
    await kill_9_mid_stream_then_restart(
        kafka_bootstrap,
        settings,
        lambda: worker_process(env),
        lambda n: wait_for_summaries(kafka_bootstrap, settings, n),
        len(expected_summaries),
    )
    summaries, alerts = await outputs(kafka_bootstrap, settings)
    # Replays after the last checkpoint repeat outputs byte for byte: as sets they are equal.
    assert summaries == expected_summaries
    assert alerts == expected_alerts  # no alert id missing, none invented


async def test_a_second_worker_joins_and_leaves(kafka_bootstrap: str) -> None:
    expected_summaries, expected_alerts = await reference_run(kafka_bootstrap)
    settings = isolated_settings(
        kafka_bootstrap, processing={"batch_max_records": 100, "checkpoint_interval": 0.5}
    )
    events = stream()
    one, two = Worker(settings), Worker(settings)
    task_one = asyncio.create_task(one.run())
    await asyncio.wait_for(one.ready.wait(), 60)
    await produce(kafka_bootstrap, settings.topics.predictions, events[: EVENTS // 3])
    task_two = asyncio.create_task(two.run())  # joins: partitions move to it
    await asyncio.sleep(4)
    await produce(
        kafka_bootstrap, settings.topics.predictions, events[EVENTS // 3 : 2 * EVENTS // 3]
    )
    await asyncio.sleep(4)
    two.stop()  # leaves: its partitions come back, with their checkpoints
    await asyncio.wait_for(task_two, 30)
    await produce(kafka_bootstrap, settings.topics.predictions, events[2 * EVENTS // 3 :])
    await wait_for_summaries(kafka_bootstrap, settings, len(expected_summaries))
    await asyncio.sleep(2)
    one.stop()
    await asyncio.wait_for(task_one, 30)
    assert two.stats.consumed > 0  # the second worker really took partitions
    summaries, alerts = await outputs(kafka_bootstrap, settings)
    assert summaries == expected_summaries
    assert alerts == expected_alerts


async def test_broker_stopped_for_10_seconds_then_restarted(kafka_bootstrap: str) -> None:
    """The broker shuts down mid-stream, stays down 10 s, starts again: the worker recovers."""
    port = int(kafka_bootstrap.rsplit(":", 1)[1])
    ours = [b for b in running_brokers() if b.port == port]
    if not ours:
        pytest.skip("the test broker was not started by `stream-monitor broker start`")
    expected_summaries, expected_alerts = await reference_run(kafka_bootstrap)
    settings = isolated_settings(
        kafka_bootstrap, processing={"batch_max_records": 100, "checkpoint_interval": 0.5}
    )
    worker = Worker(settings)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.ready.wait(), 60)
    events = stream()
    await produce(kafka_bootstrap, settings.topics.predictions, events[: EVENTS // 2])
    await wait_for_summaries(kafka_bootstrap, settings, 3)
    back = await asyncio.to_thread(restart, ours[0], 10.0)  # the worker is mid-stream
    assert back.pid != ours[0].pid  # a new broker process, same data
    await produce(kafka_bootstrap, settings.topics.predictions, events[EVENTS // 2 :])
    await wait_for_summaries(kafka_bootstrap, settings, len(expected_summaries), budget=120)
    await asyncio.sleep(2)
    worker.stop()
    await asyncio.wait_for(task, 60)
    assert not task.exception()
    summaries, alerts = await outputs(kafka_bootstrap, settings)
    assert summaries == expected_summaries
    assert alerts == expected_alerts


async def test_a_slow_sink_pauses_consumption_and_loses_nothing(kafka_bootstrap: str) -> None:
    """Backpressure: the slow sink's queue stays bounded, the worker pauses, then resumes."""
    _, expected_alerts = await reference_run(kafka_bootstrap)

    class Slow(ListSink):
        peak = 0

        async def publish(self, item: AlertEvent) -> None:
            Slow.peak = max(Slow.peak, worker.bus.subscriptions[-1].queue.qsize())  # type: ignore[union-attr]
            await asyncio.sleep(1.0)
            await super().publish(item)

    slow = Slow(LogSinkSpec(name="slow", queue_size=2))
    settings = isolated_settings(kafka_bootstrap)
    worker = Worker(settings, sinks=[slow])
    feeder = asyncio.create_task(_feed_when_ready(worker, settings, stream()))
    await run_worker_until(
        worker,
        lambda: worker.stats.consumed >= EVENTS and len(slow.alerts) == len(expected_alerts),
        timeout=90,
    )
    await feeder
    assert {a.alert_id for a in slow.alerts} == expected_alerts  # nothing dropped
    assert Slow.peak <= 2  # memory bounded by the queue size
    assert worker.stats.pauses >= 1
    assert worker.stats.resumes >= 1
    _, alerts = await outputs(kafka_bootstrap, settings)
    assert alerts == expected_alerts  # the other sink was not held back into losing anything


async def test_shutdown_is_bounded_when_the_broker_is_gone_and_nothing_is_lost() -> None:
    """SIGTERM with the broker stopped: the worker exits within processing.shutdown_timeout,
    with exit code 3 and a log line of what it could not commit; the restart replays it."""
    info = start_kafka(free_port())
    try:
        bootstrap = f"127.0.0.1:{info.port}"
        expected_summaries, expected_alerts = await reference_run(bootstrap)
        settings = isolated_settings(bootstrap)
        env = environment(settings)
        env["STREAM_MONITOR_PROCESSING__CHECKPOINT_INTERVAL"] = "600"  # nothing committed yet
        env["STREAM_MONITOR_PROCESSING__SHUTDOWN_TIMEOUT"] = "3"
        worker = worker_process(env, logged=True)
        try:
            await asyncio.sleep(3)
            await produce(bootstrap, settings.topics.predictions, stream())
            await wait_for_summaries(bootstrap, settings, len(expected_summaries))
            # The broker goes down (its data kept) and comes back 15 s later.
            outage = asyncio.create_task(asyncio.to_thread(restart, info, 15.0))
            await asyncio.to_thread(_wait_until_down, info.port)
            signalled = time.monotonic()
            worker.send_signal(signal.SIGTERM)
            output, _ = await asyncio.to_thread(worker.communicate, None, 30)
            took = time.monotonic() - signalled
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
        log = output.decode()
        assert worker.returncode == 3, log
        assert took < 3 + 2, f"exited {took:.1f} s after SIGTERM"
        line = next(
            orjson.loads(row)
            for row in log.splitlines()
            if row.startswith("{") and "without committing" in row
        )
        assert {u["partition"] for u in line["uncommitted"]} == {0, 1}
        assert all(u["committed"] == {} for u in line["uncommitted"])
        assert all(settings.topics.predictions in u["processed"] for u in line["uncommitted"])
        info = await outage
        # Nothing lost: a restarted worker replays what was not committed.
        again = Worker(settings)
        await run_worker_until(again, lambda: again.stats.consumed >= EVENTS)
        summaries, alerts = await outputs(bootstrap, settings)
        assert summaries == expected_summaries
        assert alerts == expected_alerts
    finally:
        stop(info)


def _wait_until_down(port: int, budget: float = 60.0) -> None:
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"the broker on port {port} is still up after {budget} s")


async def test_an_event_that_makes_the_monitor_raise_is_dead_lettered_and_the_partition_goes_on(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug triggered by one event (injected: the monitor of model "crash" raises) must not
    crash the worker nor change the other models' outputs: the event goes to the dead-letter
    topic with the class of what was raised."""
    expected_summaries, expected_alerts = await reference_run(kafka_bootstrap)
    real = ModelMonitor.update_native

    def buggy(self: ModelMonitor, batch: Any, positions: list[int]) -> Any:
        if self.model_id == "crash":
            raise ZeroDivisionError("injected")
        return real(self, batch, positions)

    monkeypatch.setattr(ModelMonitor, "update_native", buggy)
    settings = isolated_settings(kafka_bootstrap)
    events = stream()
    poison = orjson.dumps(
        {
            "event_id": "poison",
            "model_id": "crash",
            "timestamp": T0,
            "features": {"amount": 1.0},
            "prediction": 1,
        }
    )
    events.insert(EVENTS // 2, (b"model-0", poison))  # same partition as model-0
    worker = Worker(settings)
    running = asyncio.create_task(worker.run())
    await _feed_when_ready(worker, settings, events)
    try:
        await wait_for_summaries(kafka_bootstrap, settings, len(expected_summaries))
    finally:
        worker.stop()
        await asyncio.wait_for(running, 30)  # it did not crash: it stops cleanly
    assert worker.exit_code == 0
    assert worker.stats.poison == 1
    assert worker.stats.rollbacks >= 2  # back for the batch, then for the event
    summaries, alerts = await outputs(kafka_bootstrap, settings)
    assert summaries == expected_summaries
    assert alerts == expected_alerts
    dead = await read_all(kafka_bootstrap, settings.topics.dead_letters)
    assert {r.value for r in dead} == {poison}  # once or more (at-least-once), nothing else
    headers = dict(dead[0].headers)
    assert headers["error.class"] == b"ZeroDivisionError"
    assert headers["error.field"] == b"<monitor>"
    assert b"injected" in headers["error.reason"]
