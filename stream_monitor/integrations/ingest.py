"""``stream-monitor ingest``: KServe's payload logger in, prediction events out.

KServe's logger (``logger: {mode: all, url: http://stream-monitor-ingest:PORT}`` on an
InferenceService) posts each inference request and response as a CloudEvent, in binary mode
(``ce-*`` headers, the payload as the body) or structured mode (``application/cloudevents+json``,
the payload under ``data`` or ``data_base64``). Request and response share the CloudEvent ``id``;
``ingest`` keeps the first of the two until the other arrives (at most ``max_pending``, for at
most ``ttl`` seconds; counted when they expire or are evicted), then makes one prediction event
per row of the batch and produces them to the predictions topic, keyed by model id. It answers
2xx only once the broker has acknowledged them (at least once), 4xx for a payload it cannot read
(with the reason), 503 when the broker does not answer.

Payloads, V1 and Open Inference Protocol V2:

- request ``{"instances": [[...], ...]}`` (or rows as objects, or ``inputs`` instead of
  ``instances``), response ``{"predictions": [...]}``;
- request ``{"inputs": [{"name", "shape", "datatype", "data"}, ...]}`` and response
  ``{"outputs": [...]}``: one tensor of shape ``[N, F]``, or one tensor per feature of shape
  ``[N]`` or ``[N, 1]``.

Feature names are the row objects' keys, the V2 tensor names, or ``--features`` (else ``f0``,
``f1``, ...). A row's prediction is the response row; a row of class probabilities gives the most
probable class as the prediction and its probability (the positive class's, for two) as the score.
The model id is the CloudEvent's ``inferenceservicename`` extension, else ``--model-id``.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from stream_monitor.config.settings import Settings
from stream_monitor.errors import EventValidationError
from stream_monitor.events.codec import EventCodec
from stream_monitor.kafka.connection import client_kwargs
from stream_monitor.kafka.partitioner import KeyPartitioner
from stream_monitor.logs import get_logger
from stream_monitor.observability.server import auth_middleware, start_site

__all__ = ["Ingest", "IngestError", "events_of", "read_cloudevent"]

log = get_logger("stream_monitor.integrations.ingest")


class IngestError(ValueError):
    """A CloudEvent or payload that cannot be read; the reason goes back in the 400."""


@dataclass
class CloudEvent:
    id: str
    type: str
    model_id: str | None
    time: int | None  # epoch ms
    data: Any
    rows: list[Any] | None = None  # the payload's rows, once read (see rows_of)

    @property
    def is_response(self) -> bool:
        return "response" in self.type


def _epoch_ms(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise IngestError(f"time {text[:40]!r} is not an RFC 3339 time") from None


def read_cloudevent(headers: Any, body: bytes) -> CloudEvent:
    """A CloudEvent from an HTTP request, binary or structured mode."""
    content_type = headers.get("Content-Type", "")
    try:
        if content_type.startswith("application/cloudevents+json"):
            envelope = orjson.loads(body)
            if not isinstance(envelope, dict):
                raise IngestError("a structured CloudEvent must be a JSON object")
            if "data_base64" in envelope:
                data = orjson.loads(base64.b64decode(envelope["data_base64"]))
            else:
                data = envelope.get("data")
                if isinstance(data, str):
                    data = orjson.loads(data)
            attributes = {k: str(v) for k, v in envelope.items() if not k.startswith("data")}
        else:
            data = orjson.loads(body)
            attributes = {
                k[3:].lower(): v for k, v in headers.items() if k.lower().startswith("ce-")
            }
    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise IngestError(f"the payload is not JSON ({exc})") from None
    for name in ("id", "type"):
        if not attributes.get(name):
            raise IngestError(f"the CloudEvent has no {name!r} (ce-{name} header in binary mode)")
    return CloudEvent(
        id=attributes["id"],
        type=attributes["type"],
        model_id=attributes.get("inferenceservicename") or None,
        time=_epoch_ms(attributes.get("time")),
        data=data,
    )


def _rows_v2(tensors: Any, what: str) -> tuple[list[str], list[list[Any]]]:
    """(names, rows) of V2 tensors: one [N, F] tensor, or one [N] / [N, 1] tensor a column."""
    if not isinstance(tensors, list) or not tensors:
        raise IngestError(f"{what} must be a non-empty list of tensors")
    columns: list[tuple[str, list[Any], int]] = []
    for tensor in tensors:
        if not isinstance(tensor, dict) or "data" not in tensor or "shape" not in tensor:
            raise IngestError(f"each of {what} needs name, shape and data")
        shape = tensor["shape"]
        flat = _flatten(tensor["data"])
        width = 1 if len(shape) < 2 else int(shape[1])
        if not shape or int(shape[0]) * width != len(flat):
            raise IngestError(
                f"tensor {tensor.get('name')!r}: shape {shape} does not hold {len(flat)} values"
            )
        columns.append((str(tensor.get("name", f"t{len(columns)}")), flat, width))
    if len(columns) == 1:
        name, flat, width = columns[0]
        rows = [flat[i * width : (i + 1) * width] for i in range(len(flat) // width)]
        return ([name] if width == 1 else [f"{name}_{j}" for j in range(width)]), rows
    count = {len(flat) // width for _, flat, width in columns}
    if len(count) != 1 or any(width != 1 for _, _, width in columns):
        raise IngestError(f"{what}: tensors a column each must all be of shape [N] or [N, 1]")
    names = [name for name, _, _ in columns]
    return names, [list(row) for row in zip(*(flat for _, flat, _ in columns), strict=True)]


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list) and data and isinstance(data[0], list):
        return [value for row in data for value in _flatten(row)]
    if not isinstance(data, list):
        raise IngestError("tensor data must be a list")
    return data


def _request_rows(data: Any, names: list[str] | None) -> list[dict[str, Any]]:
    if not isinstance(data, dict):
        raise IngestError("the request payload must be a JSON object")
    if "instances" in data or ("inputs" in data and not _is_v2(data["inputs"])):
        rows = data.get("instances", data.get("inputs"))
        if not isinstance(rows, list) or not rows:
            raise IngestError("instances must be a non-empty list")
        out = []
        for row in rows:
            if isinstance(row, dict):
                out.append(row)
            elif isinstance(row, list):
                out.append(
                    dict(zip(names or [f"f{j}" for j in range(len(row))], row, strict=False))
                )
            else:
                out.append({(names or ["f0"])[0]: row})
        return out
    if "inputs" in data:
        tensor_names, rows = _rows_v2(data["inputs"], "inputs")
        use = names if names and len(names) == len(rows[0]) else tensor_names
        return [dict(zip(use, row, strict=True)) for row in rows]
    raise IngestError("the request has neither instances (V1) nor inputs (V2)")


def _is_v2(inputs: Any) -> bool:
    return (
        isinstance(inputs, list)
        and bool(inputs)
        and isinstance(inputs[0], dict)
        and ("datatype" in inputs[0] or "shape" in inputs[0])
    )


def _response_rows(data: Any) -> list[Any]:
    if not isinstance(data, dict):
        raise IngestError("the response payload must be a JSON object")
    if "predictions" in data:
        rows = data["predictions"]
        if not isinstance(rows, list):
            raise IngestError("predictions must be a list")
        return rows
    if "outputs" in data:
        _, rows = _rows_v2(data["outputs"], "outputs")
        return [row[0] if len(row) == 1 else row for row in rows]
    raise IngestError("the response has neither predictions (V1) nor outputs (V2)")


def _prediction(row: Any) -> tuple[Any, float | None]:
    """(prediction, score) of one response row."""
    if isinstance(row, list) and row and all(isinstance(p, int | float) for p in row):
        best = max(range(len(row)), key=row.__getitem__)
        return best, float(row[1] if len(row) == 2 else row[best])
    return row, None


def rows_of(event: CloudEvent, names: list[str] | None) -> list[Any]:
    """The rows of a request (feature dicts) or of a response (outputs), read once."""
    if event.rows is None:
        event.rows = (
            _response_rows(event.data) if event.is_response else _request_rows(event.data, names)
        )
    return event.rows


def row_events(
    request_id: str,
    model_id: str,
    timestamp: int,
    inputs: list[dict[str, Any]],
    outputs: list[tuple[Any, float | None]],
    *,
    model_version: str | None = None,
) -> list[dict[str, Any]]:
    """One prediction event per row: the request's feature dicts beside the (prediction, score)
    of each response row; the event id is the request id, suffixed by the row for batches."""
    if len(inputs) != len(outputs):
        raise IngestError(f"{len(inputs)} request rows but {len(outputs)} response rows")
    events = []
    for i, (features, (prediction, score)) in enumerate(zip(inputs, outputs, strict=True)):
        event: dict[str, Any] = {
            "event_id": request_id if len(inputs) == 1 else f"{request_id}-{i}",
            "model_id": model_id,
            "timestamp": timestamp,
            "features": features,
            "prediction": prediction,
        }
        if score is not None:
            event["score"] = score
        if model_version:
            event["model_version"] = model_version
        events.append(event)
    return events


def events_of(
    request: CloudEvent, response: CloudEvent, model_id: str, names: list[str] | None
) -> list[dict[str, Any]]:
    """One prediction event per row of a request and its response."""
    timestamp = request.time or response.time or time.time_ns() // 1_000_000
    outputs = [_prediction(row) for row in rows_of(response, names)]
    return row_events(request.id, model_id, timestamp, rows_of(request, names), outputs)


@dataclass
class Ingest:
    """The join of requests and responses, and what it produces."""

    settings: Settings
    model_id: str | None = None
    features: list[str] | None = None
    ttl: float = 60.0
    max_pending: int = 10_000
    producer: AIOKafkaProducer | None = None
    pending: OrderedDict[str, tuple[float, CloudEvent]] = field(default_factory=OrderedDict)
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.codec = EventCodec(self.settings.limits)

    async def start(self) -> None:
        self.producer = AIOKafkaProducer(
            acks="all",
            linger_ms=5,
            partitioner=KeyPartitioner(),
            **client_kwargs(self.settings.kafka),
        )
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    def _expire(self, now: float) -> None:
        while self.pending:
            _, (since, _) = next(iter(self.pending.items()))
            if now - since < self.ttl:
                break
            self.pending.popitem(last=False)
            self.counts["expired"] += 1

    def take(self, event: CloudEvent) -> tuple[CloudEvent, CloudEvent] | None:
        """Keep one half of a pair; the (request, response) once both are here."""
        now = time.monotonic()
        self._expire(now)
        other = self.pending.pop(event.id, None)
        if other is None:
            self.pending[event.id] = (now, event)
            if len(self.pending) > self.max_pending:
                self.pending.popitem(last=False)
                self.counts["evicted"] += 1
            return None
        self.counts["matched"] += 1
        first = other[1]
        return (first, event) if event.is_response else (event, first)

    def _values(self, event: CloudEvent) -> tuple[str, list[bytes]] | None:
        """The model id and encoded events once ``event`` completes a pair (else None)."""
        rows_of(event, self.features)  # each half is read at once: refused now, not at its pair
        pair = self.take(event)
        if pair is None:
            return None
        model_id = pair[0].model_id or pair[1].model_id or self.model_id
        if not model_id:
            raise IngestError(
                "no model id: the CloudEvents carry no inferenceservicename; pass --model-id"
            )
        values = [orjson.dumps(e) for e in events_of(*pair, model_id, self.features)]
        for value in values:
            self.codec.decode_prediction(value)  # as the worker will read it
        return model_id, values

    async def handle(self, request: web.Request) -> web.Response:
        try:
            made = self._values(read_cloudevent(request.headers, await request.read()))
        except (IngestError, EventValidationError) as exc:
            self.counts["refused"] += 1
            return web.json_response({"error": str(exc)}, status=400)
        if made is None:
            return web.json_response({"status": "waiting for its pair"}, status=202)
        model_id, values = made
        assert self.producer is not None  # noqa: S101
        topic = self.settings.topics.predictions
        try:
            sent = [await self.producer.send(topic, v, key=model_id.encode()) for v in values]
            await asyncio.gather(*sent)
        except KafkaError as exc:
            self.counts["unavailable"] += 1
            return web.json_response({"error": f"the broker did not take it: {exc}"}, status=503)
        self.counts["produced"] += len(values)
        return web.json_response({"status": "produced", "events": len(values)}, status=200)

    async def stats(self, _: web.Request) -> web.Response:
        return web.json_response({**self.counts, "pending": len(self.pending)})


async def serve_ingest(ingest: Ingest, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve ``ingest`` (POST anywhere; GET /stats); returns the runner and the port."""
    http = ingest.settings.http
    token = http.auth_token.get_secret_value() if http.auth_token else None
    app = web.Application(middlewares=[auth_middleware(token)])
    app.router.add_get("/stats", ingest.stats)
    app.router.add_post("/{tail:.*}", ingest.handle)
    await ingest.start()
    return await start_site(app, host, port, hint="choose another --port")
