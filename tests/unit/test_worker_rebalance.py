"""How the worker hands partitions over in a rebalance, as pure logic (the broker cases are
tests/integration/test_runtime.py and the chaos suite)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from stream_monitor.config import load_settings
from stream_monitor.runtime.merge import Merge
from stream_monitor.runtime.worker import Worker, _Partition


def worker_with(*numbers: int) -> Worker:
    worker = Worker(load_settings(None, {}))
    for number in numbers:
        worker.partitions[number] = _Partition(worker._monitor_set(), Merge("p", "l"))
    return worker


@pytest.mark.parametrize("failure", [KafkaConnectionError("broker gone"), IndexError("a bug")])
async def test_a_revocation_that_fails_still_drops_its_partitions(failure: Exception) -> None:
    # Found by the chaos suite: a revocation that raised kept its partitions in memory, the
    # next assignment did not take (and seek) them, and nothing more was processed.
    worker = worker_with(0, 1, 2)

    async def fails(*_: object, **__: object) -> None:
        raise failure

    worker._flush_outputs = fails  # type: ignore[method-assign]
    revoked = [TopicPartition("predictions", n) for n in (0, 1)]
    if isinstance(failure, IndexError):  # a bug is still raised (aiokafka logs it)
        with pytest.raises(IndexError):
            await worker.partitions_revoked(revoked)
    else:
        await worker.partitions_revoked(revoked)
    assert set(worker.partitions) == {2}


async def test_every_assigned_partition_is_taken_afresh() -> None:
    worker = worker_with(0, 1)
    stale = worker.partitions[0]
    taken: list[int] = []

    async def take(number: int) -> None:
        taken.append(number)
        worker.partitions[number] = _Partition(worker._monitor_set(), Merge("p", "l"))

    worker._take_until_taken = take  # type: ignore[method-assign]
    await worker.partitions_assigned([TopicPartition("predictions", n) for n in (0, 2)])
    assert taken == [0, 2]  # 0 too: its state was kept across the rebalance
    assert worker.partitions[0] is not stale


async def test_commits_of_the_loop_and_a_revocation_do_not_interleave() -> None:
    worker = worker_with()
    inside: list[str] = []

    async def commit_now(numbers: object, *, force: bool) -> None:
        inside.append("in")
        await asyncio.sleep(0.01)
        inside.append("out")

    worker._commit_now = commit_now  # type: ignore[method-assign]
    await asyncio.gather(worker._commit(), worker._commit([0], force=True))
    assert inside == ["in", "out", "in", "out"]
