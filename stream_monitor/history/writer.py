"""``stream-monitor store``: the metrics and alerts topics, consumed into the history database.

No consumer group: the store's own offsets live in the database, written in the same transaction
as the rows they cover, so a restart resumes exactly after the last stored record and a replay
of the topics inserts nothing twice. It reads ``read_committed`` so outputs of aborted
transactions (exactly-once workers) are never stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from stream_monitor.config.settings import Settings
from stream_monitor.history.sql import Page, SqlHistory
from stream_monitor.kafka.connection import client_kwargs
from stream_monitor.logs import get_logger

__all__ = ["HistoryWriter", "StoreStats", "assign_from"]

log = get_logger("stream_monitor.history")

_DAY_MS = 86_400_000
_PARTITIONS_WAIT = 1.0
_RETRY = 2.0


async def assign_from(
    consumer: AIOKafkaConsumer,
    topics: list[str],
    offsets: dict[tuple[str, int], int],
    wait: float | None = None,
) -> list[TopicPartition]:
    """Assign every partition of ``topics`` and seek each to its stored next offset.

    Partitions without a stored offset start from the beginning. Topics that do not exist yet
    are waited for (up to ``wait`` seconds when given; then only the existing ones are taken).
    """
    deadline = None if wait is None else time.monotonic() + wait
    while True:
        found: list[TopicPartition] = []
        missing = []
        for topic in topics:
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(topic)
            if partitions:
                found.extend(TopicPartition(topic, p) for p in sorted(partitions))
            else:
                missing.append(topic)
        if not missing or (deadline is not None and time.monotonic() >= deadline):
            break
        log.info("waiting for the output topics to exist", missing=missing)
        await asyncio.sleep(_PARTITIONS_WAIT)
    consumer.assign(found)
    for tp in found:
        stored = offsets.get((tp.topic, tp.partition))
        if stored is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, stored)
    return found


@dataclass
class StoreStats:
    """What the store has done since it started."""

    records: int = 0
    summaries: int = 0
    alerts: int = 0
    replayed: int = 0  # records already in the database (a replay or a restart)
    unreadable: int = 0
    expired_windows: int = 0
    expired_alerts: int = 0


class HistoryWriter:
    """Consumes the output topics into ``history`` until stopped (or caught up, with ``once``)."""

    def __init__(
        self,
        settings: Settings,
        history: SqlHistory,
        *,
        max_records: int = 5_000,
        retention_check: float = 300.0,
    ) -> None:
        self.settings = settings
        self.history = history
        self.max_records = max_records
        self.retention_check = retention_check
        self.stats = StoreStats()
        self._expired_at = 0.0

    @property
    def topics(self) -> list[str]:
        return [self.settings.topics.metrics, self.settings.topics.alerts]

    async def run(self, stop: asyncio.Event, *, once: bool = False) -> StoreStats:
        """Store records until ``stop`` is set; with ``once``, until the topics' ends."""
        while not stop.is_set():
            consumer = AIOKafkaConsumer(
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
                **client_kwargs(self.settings.kafka),
            )
            try:
                await consumer.start()
                offsets = await asyncio.to_thread(self.history.offsets, self.topics)
                assigned = await assign_from(
                    consumer, self.topics, offsets, wait=5.0 if once else None
                )
                if await self._consume(consumer, assigned, stop, once):
                    break
            except KafkaError as exc:
                log.warning("cannot read the output topics, retrying", error=str(exc))
                await _sleep_or_stop(stop, _RETRY)
            finally:
                await consumer.stop()
        return self.stats

    async def _consume(
        self,
        consumer: AIOKafkaConsumer,
        assigned: list[TopicPartition],
        stop: asyncio.Event,
        once: bool,
    ) -> bool:
        """Read and store; True when done (caught up with ``once``), False on stop."""
        alerts_topic = self.settings.topics.alerts
        while not stop.is_set():
            await self._expire_if_due()
            batches = await consumer.getmany(timeout_ms=500, max_records=self.max_records)
            if not batches:
                if once and await _caught_up(consumer, assigned):
                    return True
                continue
            page = Page()
            for tp, records in batches.items():
                for record in records:
                    self._add(page, record.topic == alerts_topic, record.value)
                page.offsets[(tp.topic, tp.partition)] = records[-1].offset + 1
            await self._write(page, stop)
        return False

    def _add(self, page: Page, is_alert: bool, value: bytes | None) -> None:
        self.stats.records += 1
        fields = _ALERT_FIELDS if is_alert else _SUMMARY_FIELDS
        try:
            data = orjson.loads(value or b"")
        except orjson.JSONDecodeError as exc:
            data, problem = None, f"not JSON: {exc}"
        else:
            problem = f"not {'an alert' if is_alert else 'a window summary'}: needs " + ", ".join(
                f"{k} ({v.__name__})" for k, v in fields.items()
            )
        if isinstance(data, dict) and _well_typed(data, fields):
            (page.alerts if is_alert else page.summaries).append(data)
            return
        self.stats.unreadable += 1
        log.warning("skipping an unreadable record", error=problem)

    async def _write(self, page: Page, stop: asyncio.Event) -> None:
        """Write ``page``, retrying while the database is away (the offsets go with it)."""
        while True:
            try:
                written = await asyncio.to_thread(self.history.write, page)
                break
            except Exception as exc:  # the database: connection lost, disk full, locked
                log.exception("cannot write to the history database, retrying", error=str(exc))
                if stop.is_set():
                    return
                await _sleep_or_stop(stop, _RETRY)
        self.stats.summaries += written.summaries
        self.stats.alerts += written.alerts
        self.stats.replayed += len(page) - written.summaries - written.alerts

    async def _expire_if_due(self) -> None:
        days = self.settings.history.retention_days
        now = time.monotonic()
        if days <= 0 or now - self._expired_at < self.retention_check:
            return
        self._expired_at = now
        before = int(time.time() * 1000 - days * _DAY_MS)
        gone = await asyncio.to_thread(self.history.expire, before)
        self.stats.expired_windows += gone.summaries
        self.stats.expired_alerts += gone.alerts
        if gone.summaries or gone.alerts:
            log.info(
                "retention: deleted old history",
                windows=gone.summaries,
                alerts=gone.alerts,
                retention_days=days,
            )


_SUMMARY_FIELDS: dict[str, Any] = {
    "model_id": str,
    "window_index": int,
    "window_kind": str,
    "window_start": int,
    "window_end": int,
    "sample_size": int,
}
_ALERT_FIELDS: dict[str, Any] = {
    "alert_id": str,
    "dedup_key": str,
    "status": str,
    "severity": str,
    "model_id": str,
    "kind": str,
    "rule": str,
    "statistic": str,
    "window_start": int,
    "window_end": int,
    "starts_at": int,
    "summary": str,
}


def _well_typed(record: dict[str, Any], fields: dict[str, Any]) -> bool:
    return all(
        isinstance(record.get(name), kind) and not isinstance(record.get(name), bool)
        for name, kind in fields.items()
    )


async def _caught_up(consumer: AIOKafkaConsumer, assigned: list[TopicPartition]) -> bool:
    if not assigned:
        return True
    ends = await consumer.end_offsets(assigned)
    for tp in assigned:
        if await consumer.position(tp) < ends[tp]:
            return False
    return True


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
