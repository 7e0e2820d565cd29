"""How the worker hands partitions over in a rebalance, as pure logic (the broker cases are
tests/integration/test_runtime.py and the chaos suite)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError

from stream_monitor.config import load_settings
from stream_monitor.events import encode_event
from stream_monitor.monitor.model_monitor import Output
from stream_monitor.runtime.consume import ConsumeLoop
from stream_monitor.runtime.merge import Merge
from stream_monitor.runtime.state import PartitionState
from stream_monitor.runtime.worker import Worker
from stream_monitor.sinks.bus import AlertBus

from .monitor.streams import stream


def worker_with(*numbers: int) -> Worker:
    worker = Worker(load_settings(None, {}))
    for number in numbers:
        worker.partitions[number] = PartitionState(worker.ctx.monitor_set(), Merge("p", "l"))
    return worker


@pytest.mark.parametrize("failure", [KafkaConnectionError("broker gone"), IndexError("a bug")])
async def test_a_revocation_that_fails_still_drops_its_partitions(failure: Exception) -> None:
    # Found by the chaos suite: a revocation that raised kept its partitions in memory, the
    # next assignment did not take (and seek) them, and nothing more was processed.
    worker = worker_with(0, 1, 2)

    async def fails(*_: object, **__: object) -> None:
        raise failure

    worker.publisher.flush = fails  # type: ignore[method-assign]
    revoked = [TopicPartition("predictions", n) for n in (0, 1)]
    if isinstance(failure, IndexError):  # a bug is still raised (aiokafka logs it)
        with pytest.raises(IndexError):
            await worker.assignment.partitions_revoked(revoked)
    else:
        await worker.assignment.partitions_revoked(revoked)
    assert set(worker.partitions) == {2}


async def test_every_assigned_partition_is_taken_afresh() -> None:
    worker = worker_with(0, 1)
    stale = worker.partitions[0]
    taken: list[int] = []

    async def take(number: int) -> None:
        taken.append(number)
        worker.partitions[number] = PartitionState(worker.ctx.monitor_set(), Merge("p", "l"))

    worker.assignment.take_until_taken = take  # type: ignore[method-assign]
    await worker.assignment.partitions_assigned([TopicPartition("predictions", n) for n in (0, 2)])
    assert taken == [0, 2]  # 0 too: its state was kept across the rebalance
    assert worker.partitions[0] is not stale


async def test_commits_of_the_loop_and_a_revocation_do_not_interleave() -> None:
    worker = worker_with()
    inside: list[str] = []

    async def commit_now(numbers: object, *, force: bool) -> None:
        inside.append("in")
        await asyncio.sleep(0.01)
        inside.append("out")

    worker.committer.commit_now = commit_now  # type: ignore[method-assign]
    await asyncio.gather(worker.committer.commit(), worker.committer.commit([0], force=True))
    assert inside == ["in", "out", "in", "out"]


def records_of(number: int, count: int) -> list[SimpleNamespace]:
    events = stream(count, model_id=f"m{number}")
    return [
        SimpleNamespace(
            topic="predictions",
            partition=number,
            offset=i,
            value=encode_event(event),
            timestamp=event.timestamp,
            key=None,
            headers=(),
        )
        for i, event in enumerate(events)
    ]


def pipelined(*numbers: int) -> tuple[Worker, dict[int, list[SimpleNamespace]]]:
    """A worker whose partitions each have a batch settled, outputs recorded by partition."""
    worker = worker_with(*numbers)
    worker.ctx.bus = AlertBus([])
    batches = {number: records_of(number, 50) for number in numbers}

    async def released() -> list[tuple[int, PartitionState, list[SimpleNamespace]]]:
        return [(n, worker.partitions[n], batches[n]) for n in numbers]

    worker.loop.released = released  # type: ignore[method-assign]
    return worker, batches


async def test_every_partitions_batch_is_computed_then_published_in_order() -> None:
    worker, batches = pipelined(0, 1, 2)
    published: list[int] = []

    async def publish(number: int, outputs: list[Output]) -> None:
        published.append(number)

    worker.publisher.publish = publish  # type: ignore[method-assign]
    await worker.loop.turns()
    assert published == [0, 1, 2]
    for number, records in batches.items():
        partition = worker.partitions[number]
        assert partition.offsets == {"predictions": len(records)}
        assert partition.monitors.monitors[f"m{number}"].events == len(records)
        assert not partition.stale


async def test_batches_computed_but_not_published_leave_their_partitions_stale() -> None:
    worker, _ = pipelined(0, 1, 2)

    async def publish(number: int, outputs: list[Output]) -> None:
        if number == 1:
            raise KafkaConnectionError("broker gone")

    worker.publisher.publish = publish  # type: ignore[method-assign]
    with pytest.raises(KafkaConnectionError):
        await worker.loop.turns()
    # 2 was computed on the thread (its state counts the batch) but never published
    await asyncio.wrap_future(worker.ctx.compute.submit(lambda: None))  # the thread is done
    assert worker.partitions[2].monitors.monitors["m2"].events == 50
    assert worker.partitions[2].offsets == {}
    assert worker.partitions[2].stale
    assert not worker.partitions[0].stale
    sent: list[int] = []

    async def send_checkpoint(producer: object, number: int, partition: PartitionState) -> None:
        sent.append(number)
        raise AssertionError("a stale partition must not be checkpointed")

    async def flush() -> None:
        return None

    worker.checkpointer.send = send_checkpoint  # type: ignore[method-assign,assignment]
    worker.ctx.producer = SimpleNamespace(flush=flush)  # type: ignore[assignment]
    worker.partitions[0].offsets = {}  # nothing to checkpoint of the others here
    worker.partitions[1].offsets = {}
    await worker.checkpointer.checkpoint([0, 1, 2])
    assert sent == []
    recovered: list[int] = []

    async def recover(number: int, error: Exception) -> None:
        recovered.append(number)
        worker.partitions[number] = PartitionState(worker.ctx.monitor_set(), Merge("p", "l"))

    worker.loop.recover = recover
    await ConsumeLoop.released(worker.loop)  # the next turn takes it back to its checkpoint first
    assert recovered == [2]
    assert not worker.partitions[2].stale
