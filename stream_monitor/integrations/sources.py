"""Sources: inference traffic that model servers already put on Kafka, read as predictions.

An Open Inference Protocol v2 source (``sources`` in the configuration) names a pair of topics,
requests and responses, as Seldon Core 2 writes them for every model
(``seldon.<namespace>.model.<model>.inputs`` and ``.outputs``). ``stream-monitor run`` reads each
pair in a consumer group of its own (``<group_id>-source-<name>``, the two topics' partitions
assigned together), joins each request with its response by request id, and produces one
prediction event per row of the batch to the predictions topic, keyed by model id, where the
monitor reads them as any other.

The join is bounded: at most ``max_pending`` halves wait, and a half waits until records
``ttl`` seconds newer (by record time, so a replay joins the same way) have arrived on the pair;
then it goes to the dead-letter topic, as do records that are not protocol messages, pairs whose
rows do not match, and events the schema refuses, each with the reason in its headers.

Offsets are committed once the events made of them are acknowledged, and never past a half that
still waits: at least once.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError

from stream_monitor.config.settings import Settings, SourceSpec
from stream_monitor.errors import EventValidationError
from stream_monitor.events.codec import EventCodec
from stream_monitor.integrations.ingest import (
    IngestError,
    _prediction,
    _request_rows,
    _rows_v2,
    row_events,
)
from stream_monitor.integrations.oip import OipError, read_request, read_response
from stream_monitor.kafka.access import check_access
from stream_monitor.kafka.connection import client_kwargs
from stream_monitor.logs import get_logger
from stream_monitor.observability.metrics import WorkerMetrics
from stream_monitor.runtime.outputs import dead_letter_headers

__all__ = ["DeadLetter", "OipBridge", "OipJoin", "Record"]

log = get_logger("stream_monitor.integrations.sources")


@dataclass(frozen=True)
class Record:
    """What the join needs of a consumed record."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # ms
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class DeadLetter:
    record: Record
    error: EventValidationError


@dataclass
class _Half:
    record: Record
    message: dict[str, Any]
    response: bool


@dataclass
class Joined:
    """What one batch of records gave: events (value, key) and dead letters."""

    events: list[tuple[bytes, bytes]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


def _refusal(record: Record, where: str, reason: str) -> DeadLetter:
    return DeadLetter(record, EventValidationError(where, "", reason))


class OipJoin:
    """Requests joined with responses; pure logic (no Kafka), fed records in order."""

    def __init__(self, spec: SourceSpec, codec: EventCodec) -> None:
        self.spec = spec
        self.codec = codec
        self.pending: OrderedDict[str, _Half] = OrderedDict()
        self.watermark = 0  # the newest record time seen, ms
        self.counts: Counter[str] = Counter()

    def _request_id(self, record: Record, message: dict[str, Any]) -> str | None:
        if message.get("id"):
            return str(message["id"])
        if record.key:
            return record.key.decode("utf-8", "replace")
        for name, value in record.headers:
            if name.lower() == "x-request-id" and value:
                return value.decode("utf-8", "replace")
        return None

    def take(self, record: Record, out: Joined) -> None:
        """Read one record of the requests or responses topic; what it completes goes to
        ``out``."""
        response = record.topic == self.spec.responses
        self.watermark = max(self.watermark, record.timestamp)
        what = "response" if response else "request"
        try:
            read = read_response if response else read_request
            message = read(record.value, self.spec.format)
        except OipError as exc:
            self.counts["malformed"] += 1
            out.dead.append(_refusal(record, f"<{what}>", f"is not an inference {what}: {exc}"))
            return
        request_id = self._request_id(record, message)
        if request_id is None:
            self.counts["malformed"] += 1
            out.dead.append(
                _refusal(
                    record,
                    "id",
                    f"the {what} has no request id (message id, record key or x-request-id "
                    "header): it cannot be joined",
                )
            )
            return
        other = self.pending.pop(request_id, None)
        if other is None or other.response == response:
            if other is not None:  # a second request (or response) under the same id
                self.counts["duplicate"] += 1
                out.dead.append(
                    _refusal(other.record, "id", f"request id {request_id!r} came twice")
                )
            self.pending[request_id] = _Half(record, message, response)
            self.expire(out)
            return
        self.counts["matched"] += 1
        request, answer = (other, _Half(record, message, response))
        if response is False:
            request, answer = answer, other
        try:
            out.events.extend(self._events(request_id, request, answer))
        except (IngestError, EventValidationError) as exc:
            self.counts["refused"] += 1
            reason = (
                f"{exc.field} {exc.reason}" if isinstance(exc, EventValidationError) else str(exc)
            )
            where = exc.field if isinstance(exc, EventValidationError) else "<pair>"
            for half in (request, answer):
                out.dead.append(_refusal(half.record, where, f"the pair is refused: {reason}"))

    def expire(self, out: Joined) -> None:
        """Dead-letter halves that waited ``ttl`` of record time, or beyond ``max_pending``
        (after each half taken in, and after each batch)."""
        horizon = self.watermark - round(self.spec.ttl * 1000)
        while self.pending:
            request_id, half = next(iter(self.pending.items()))
            if half.record.timestamp > horizon and len(self.pending) <= self.spec.max_pending:
                break
            del self.pending[request_id]
            expired = half.record.timestamp <= horizon
            self.counts["expired" if expired else "evicted"] += 1
            missing = "request" if half.response else "response"
            why = (
                f"no {missing} within ttl {self.spec.ttl:g} s"
                if expired
                else f"evicted: more than max_pending {self.spec.max_pending} halves waited"
            )
            out.dead.append(_refusal(half.record, "id", f"request id {request_id!r}: {why}"))

    def _outputs(self, message: dict[str, Any]) -> tuple[list[Any], list[float | None]]:
        """(prediction, score) rows of a response, from the configured tensors."""
        tensors = message["outputs"]
        by_name = {str(t.get("name")): t for t in tensors if isinstance(t, dict)}

        def column(name: str) -> list[Any]:
            if name not in by_name:
                raise IngestError(f"the response has no output {name!r} (outputs: {list(by_name)})")
            _, rows = _rows_v2([by_name[name]], "outputs")
            return [row[0] if len(row) == 1 else row for row in rows]

        if self.spec.prediction is None and self.spec.score is None:
            _, rows = _rows_v2(tensors, "outputs")
            made = [_prediction(row[0] if len(row) == 1 else row) for row in rows]
            return [p for p, _ in made], [s for _, s in made]
        score_name = self.spec.score
        prediction_name = self.spec.prediction or next(
            (name for name in by_name if name != score_name), None
        )
        if prediction_name is None:  # the scores alone: the most probable class of each row
            made = [_prediction(row) for row in column(str(score_name))]
            return [p for p, _ in made], [s for _, s in made]
        predictions = column(prediction_name)
        if score_name is None:
            return predictions, [None] * len(predictions)
        scores = column(score_name)
        if len(scores) != len(predictions):
            raise IngestError(f"{len(predictions)} predictions but {len(scores)} scores")
        return predictions, [_score(s) for s in scores]

    def _events(
        self, request_id: str, request: _Half, response: _Half
    ) -> list[tuple[bytes, bytes]]:
        model_id = (
            self.spec.model_id
            or request.message.get("model_name")
            or response.message.get("model_name")
        )
        if not model_id:
            raise IngestError("no model id: the messages carry no model_name; set model_id")
        inputs = _request_rows({"inputs": request.message["inputs"]}, self.spec.features)
        predictions, scores = self._outputs(response.message)
        version = response.message.get("model_version") or request.message.get("model_version")
        events = row_events(
            request_id,
            str(model_id),
            request.record.timestamp,
            inputs,
            list(zip(predictions, scores, strict=True)),
            model_version=str(version) if version else None,
        )
        made = []
        for event in events:
            value = orjson.dumps(event)
            self.codec.decode_prediction(value)  # as the worker will read it
            made.append((value, str(model_id).encode()))
        self.counts["produced"] += len(made)
        return made

    def floor(self, topic: str, partition: int) -> int | None:
        """The lowest offset of ``topic``/``partition`` still waiting (None: none waits)."""
        offsets = [
            half.record.offset
            for half in self.pending.values()
            if half.record.partition == partition and half.record.topic == topic
        ]
        return min(offsets) if offsets else None

    def drop(self, partitions: set[tuple[str, int]]) -> None:
        """Forget the halves of partitions taken away (their new owner reads them again)."""
        for request_id in [
            rid
            for rid, half in self.pending.items()
            if (half.record.topic, half.record.partition) in partitions
        ]:
            del self.pending[request_id]


def _score(value: Any) -> float | None:
    if isinstance(value, list):  # class probabilities: the positive class's, as ingest reads them
        return _prediction(value)[1]
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class _Revoked(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, bridge: OipBridge) -> None:
        self.bridge = bridge

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.bridge.join.drop({(tp.topic, tp.partition) for tp in revoked})
        for tp in revoked:
            self.bridge.next_offsets.pop(tp, None)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None


class OipBridge:
    """One source: its consumer, the join, and the producer of prediction events."""

    def __init__(
        self, settings: Settings, spec: SourceSpec, metrics: WorkerMetrics | None = None
    ) -> None:
        self.settings = settings
        self.spec = spec
        self.metrics = metrics
        self.reported: Counter[str] = Counter()  # counts already added to the metrics
        self.join = OipJoin(spec, EventCodec(settings.limits))
        self.group = f"{settings.kafka.group_id}-source-{spec.name}"
        self.next_offsets: dict[TopicPartition, int] = {}
        self.stopping = asyncio.Event()
        self.dead_lettered = 0

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        """Read, join and produce until :meth:`stop`; raises :class:`AccessError` when the
        broker refuses the source's topics or group, or they do not exist."""
        where = f"sources[{self.spec.name}]"
        await check_access(
            self.settings.kafka,
            {f"{where}.requests": self.spec.requests, f"{where}.responses": self.spec.responses},
            group=self.group,
            existing=True,
        )
        kwargs = client_kwargs(self.settings.kafka)
        consumer = AIOKafkaConsumer(
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            partition_assignment_strategy=(RangePartitionAssignor,),
            **kwargs,
        )
        producer = AIOKafkaProducer(acks="all", enable_idempotence=True, linger_ms=5, **kwargs)
        await producer.start()
        try:
            await consumer.start()
            consumer.subscribe([self.spec.requests, self.spec.responses], listener=_Revoked(self))
            log.info("source started", source=self.spec.name, group=self.group)
            while not self.stopping.is_set():
                await self._turn(consumer, producer)
        finally:
            await consumer.stop()
            await producer.stop()
            log.info("source stopped", source=self.spec.name, **dict(self.join.counts))

    async def _turn(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        try:
            batches = await consumer.getmany(timeout_ms=200, max_records=2_000)
        except KafkaError as exc:
            log.warning("source fetch failed, retrying", source=self.spec.name, error=str(exc))
            await asyncio.sleep(1.0)
            return
        out = Joined()
        for tp, records in batches.items():
            for r in records:
                record = Record(
                    r.topic, r.partition, r.offset, r.timestamp, r.key, r.value, tuple(r.headers)
                )
                self.join.take(record, out)
            self.next_offsets[tp] = records[-1].offset + 1
        self.join.expire(out)
        if not out.events and not out.dead and not batches:
            return
        await self._send(producer, out)
        self._report()
        offsets = {}
        for tp, after in self.next_offsets.items():
            waiting = self.join.floor(tp.topic, tp.partition)
            offsets[tp] = after if waiting is None else min(after, waiting)
        if offsets:
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:  # a rebalance took them: their new owner reads them again
                log.warning("source commit failed", source=self.spec.name, error=str(exc))

    def _report(self) -> None:
        """Add what the join counted since the last turn to the worker's /metrics."""
        if self.metrics is None:
            return
        for outcome, count in self.join.counts.items():
            if count > self.reported[outcome]:
                self.metrics.source_records.labels(self.spec.name, outcome).inc(
                    count - self.reported[outcome]
                )
                self.reported[outcome] = count
        self.metrics.source_pending.labels(self.spec.name).set(len(self.join.pending))

    async def _send(self, producer: AIOKafkaProducer, out: Joined) -> None:
        topics = self.settings.topics
        sent = [await producer.send(topics.predictions, v, key=k) for v, k in out.events]
        for dead in out.dead:
            r = dead.record
            headers = dead_letter_headers(r.headers, r.topic, r.partition, r.offset, dead.error)
            sent.append(
                await producer.send(topics.dead_letters, r.value, key=r.key, headers=headers)
            )
            log.warning(
                "source record dead-lettered",
                source=self.spec.name,
                field=dead.error.field,
                reason=dead.error.reason,
                offset=r.offset,
            )
        self.dead_lettered += len(out.dead)
        await asyncio.gather(*sent)
