"""The worker's shutdown deadline, as pure logic (the broker cases are integration tests)."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import time

import pytest

from stream_monitor.config import load_settings
from stream_monitor.runtime.worker import COLLECTOR_THRESHOLDS, SHUTDOWN_INCOMPLETE, Worker


def worker(timeout: float) -> Worker:
    return Worker(load_settings(None, {"processing": {"shutdown_timeout": timeout}}))


async def test_a_batch_stuck_past_the_deadline_is_cancelled_and_reported() -> None:
    stuck = worker(0.3)
    cancelled = asyncio.Event()

    async def never_finishes() -> None:
        try:
            await asyncio.Event().wait()  # a send to a broker that never answers
        except asyncio.CancelledError:
            cancelled.set()
            raise

    stuck.loop.run = never_finishes  # type: ignore[method-assign]
    started = time.monotonic()
    asyncio.get_running_loop().call_later(0.1, stuck.stop)
    await stuck._loop_until_stopped()
    assert 0.3 < time.monotonic() - started < 2.0
    assert cancelled.is_set()
    assert stuck.exit_code == SHUTDOWN_INCOMPLETE


async def test_a_loop_that_ends_in_time_keeps_exit_code_0_and_a_failure_is_raised() -> None:
    prompt = worker(5.0)

    async def until_stopped() -> None:
        await prompt.stopping.wait()

    prompt.loop.run = until_stopped  # type: ignore[method-assign]
    asyncio.get_running_loop().call_later(0.05, prompt.stop)
    await prompt._loop_until_stopped()
    assert prompt.exit_code == 0
    failing = worker(5.0)

    async def fails() -> None:
        raise RuntimeError("a bug in the loop")

    failing.loop.run = fails  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="a bug in the loop"):
        await failing._loop_until_stopped()


def test_the_deadline_is_set_by_the_first_stop_only() -> None:
    w = worker(10.0)
    assert w.ctx.left() > 1e9  # not stopping: no deadline
    w.stop()
    first = w.ctx.deadline
    time.sleep(0.01)
    w.stop()
    assert w.ctx.deadline == first
    assert 9.0 < w.ctx.left() <= 10.0


def test_a_worker_freezes_what_it_set_up_and_collects_young_objects_rarely() -> None:
    # in a process of its own: the collector's settings are the whole process's
    probe = (
        "import gc\n"
        "from stream_monitor.runtime.worker import steady_collector\n"
        "default = gc.get_threshold()\n"
        "with steady_collector():\n"
        "    print(gc.get_freeze_count(), *gc.get_threshold())\n"
        "print(gc.get_freeze_count(), gc.get_threshold() == default)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    running, after = done.stdout.splitlines()
    frozen, *thresholds = (int(word) for word in running.split())
    assert frozen > 10_000  # the imported modules, classes and schemas
    assert tuple(thresholds) == COLLECTOR_THRESHOLDS
    assert thresholds[0] > gc.get_threshold()[0]  # far fewer young collections than the default
    assert after.split() == ["0", "True"]  # as it was once the worker is done
