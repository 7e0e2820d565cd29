"""Emit prediction and label events from a model server, without slowing its predictions.

    from stream_monitor.integrations.client import Emitter

    with Emitter(bootstrap_servers="kafka:9092", topic="predictions") as emitter:
        event_id = emitter.emit_prediction("fraud", {"amount": 12.5}, prediction=1, score=0.93)
        ...
        emitter.emit_label(event_id, "fraud", label=0)

Events are valid by construction: each call checks its event with the worker's own decoder and
limits, and a bad call raises :class:`~stream_monitor.errors.EventValidationError` at once,
naming the field. A valid event is handed to librdkafka (``confluent-kafka``, the ``client``
extra), which batches, compresses (lz4) and sends it from its own threads, keyed by model id,
with the idempotent producer unless ``idempotent=False`` (for brokers without it). The call never
waits for the broker and never raises because of it: when the buffer (``buffer`` events) is
full, the event is dropped and counted, or, with ``block=True``, the call waits at most
``block_timeout`` seconds for room first. :attr:`Emitter.counters` says what became of every
event (``sent``, ``dropped``, ``failed``, and ``pending`` until the broker answers); they are
exported as Prometheus counters when a ``registry`` is given. ``close()`` (or leaving the
``with`` block) waits at most ``close_timeout`` seconds for what is pending; what is still
pending then is counted as dropped.

:class:`AsyncEmitter` is the same for asyncio servers (``async with``), and :func:`monitored`
wraps a predict function so that each call emits its inputs and output.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import orjson

from stream_monitor._native import accepts_prediction
from stream_monitor.config.settings import LimitsSettings
from stream_monitor.errors import EventValidationError
from stream_monitor.events.codec import EventCodec

__all__ = ["AsyncEmitter", "Counters", "Emitter", "monitored"]

P = ParamSpec("P")
R = TypeVar("R")

# Keyword arguments for the connection, as the worker's kafka settings name them.
_SECURITY = {
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_username": "sasl.username",
    "sasl_password": "sasl.password",
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "ssl_key_password": "ssl.key.password",
}


@dataclass(frozen=True)
class Counters:
    """What became of the events emitted so far; they add up to ``emitted``. ``dropped`` and
    ``failed`` are exact at any time, ``sent`` and ``pending`` once the emitter is closed."""

    emitted: int
    sent: int  # acknowledged by the broker
    dropped: int  # never handed to the broker: buffer full, or still pending at close
    failed: int  # refused by the broker, or undelivered within its timeout
    pending: int  # handed over, not yet acknowledged


class Emitter:
    """Prediction and label events to Kafka from any thread; a background thread serves the
    broker's answers. A context manager: leaving it closes the emitter."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str = "predictions",
        *,
        labels_topic: str = "labels",
        buffer: int = 100_000,
        block: bool = False,
        block_timeout: float = 0.05,
        close_timeout: float = 5.0,
        idempotent: bool = True,
        limits: LimitsSettings | None = None,
        registry: Any = None,
        config: Mapping[str, Any] | None = None,
        **security: Any,
    ) -> None:
        from confluent_kafka import Producer  # noqa: PLC0415 - the optional "client" extra

        unknown = sorted(set(security) - set(_SECURITY))
        if unknown:
            raise TypeError(
                f"unknown connection setting {unknown[0]!r}; use one of {', '.join(_SECURITY)}, "
                "or config={...} for any librdkafka setting"
            )
        settings: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            # Batches of 100 ms: events reach the monitor that much later, and the call is
            # disturbed less often by librdkafka's thread taking the queue (p99 15 us instead
            # of 25 us at 10,000 calls/s here; docs/benchmarks.md).
            "linger.ms": 100,
            "compression.type": "lz4",
            "enable.idempotence": idempotent,
            "queue.buffering.max.messages": buffer,
            "message.timeout.ms": 30_000,
            # Reports only for failures: the sent count is worked out (see counters), so the
            # background thread takes the GIL once per failure, not once per event.
            "delivery.report.only.error": True,
            "error_cb": self._on_error,
            "on_delivery": self._delivered,  # one callback for all: no argument per call
            "logger": logging.getLogger(
                "stream_monitor.integrations.client"
            ),  # not librdkafka's stderr
        }
        settings.update({_SECURITY[k]: _secret(v) for k, v in security.items() if v is not None})
        settings.update(config or {})
        self.topic, self.labels_topic = topic, labels_topic
        self.block, self.block_timeout, self.close_timeout = block, block_timeout, close_timeout
        limits = limits or LimitsSettings()
        self._limits = (
            limits.max_event_bytes,
            limits.max_features,
            limits.max_string_length,
            limits.non_finite_features == "reject",
        )
        self._codec = EventCodec(limits)
        self._producer = Producer(settings)
        self._lock = threading.Lock()
        self._emitted = self._dropped = self._failed = 0
        self._prefix = os.urandom(6).hex()
        self._ids = itertools.count(1)  # next() is atomic: ids unique across threads
        self._closed = threading.Event()
        self._open = True  # read on every call: a plain attribute, not the event
        self._errors: list[str] = []
        self._poller = threading.Thread(target=self._poll, name="stream-monitor-emitter")
        self._poller.daemon = True
        self._poller.start()
        if registry is not None:
            registry.register(_Collector(self))

    # -- the calls a model server makes -------------------------------------------------

    def emit_prediction(  # noqa: PLR0917 - the event's fields, in the schema's order
        self,
        model_id: str,
        features: Mapping[str, Any],
        prediction: Any,
        score: float | None = None,
        scores: Mapping[str, float] | None = None,
        event_id: str | None = None,
        timestamp: int | None = None,
        model_version: str | None = None,
        label: Any = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> str:
        """Emit one prediction event; returns its event id (generated unless given).

        ``timestamp`` is in epoch milliseconds (now by default). Raises
        :class:`EventValidationError` for an event the monitor would refuse.
        """
        event_id = self._new_id() if event_id is None else event_id
        event: dict[str, Any] = {
            "event_id": event_id,
            "model_id": model_id,
            "timestamp": time.time_ns() // 1_000_000 if timestamp is None else timestamp,
            "features": features,
            "prediction": prediction,
        }
        # Optional fields one by one: no temporary containers (fewer garbage collections).
        if score is not None:
            event["score"] = score
        if scores is not None:
            event["scores"] = scores
        if model_version is not None:
            event["model_version"] = model_version
        if label is not None:
            event["label"] = label
        if metadata is not None:
            event["metadata"] = metadata
        data = self._encode(event)
        if not accepts_prediction(data, *self._limits):
            self._codec.decode_prediction(data)  # raises, naming the field
        self._send(self.topic, data, model_id)
        return event_id

    def emit_label(
        self, event_id: str, model_id: str, label: Any, timestamp: int | None = None
    ) -> None:
        """Emit the label of an earlier prediction (joined to it by ``event_id``)."""
        event = {
            "event_id": event_id,
            "model_id": model_id,
            "timestamp": time.time_ns() // 1_000_000 if timestamp is None else timestamp,
            "label": label,
        }
        data = self._encode(event)
        self._codec.decode_label(data)
        self._send(self.labels_topic, data, model_id)

    @property
    def counters(self) -> Counters:
        """What became of every event emitted so far."""
        with self._lock:
            emitted, dropped, failed = self._emitted, self._dropped, self._failed
            # librdkafka's queue: events queued, in flight or with a failure report not yet
            # served (and the odd client event), so sent and pending are exact once closed.
            handed = emitted - dropped - failed
            pending = 0 if self._closed.is_set() else min(len(self._producer), handed)
        return Counters(emitted, handed - pending, dropped, failed, pending)

    def close(self) -> Counters:
        """Wait at most ``close_timeout`` seconds for pending events; count the rest dropped."""
        if not self._closed.is_set():
            self._open = False
            left = self._producer.flush(self.close_timeout)
            self._closed.set()
            self._poller.join()
            self._producer.poll(0)
            with self._lock:
                # librdkafka's count holds its own events too (a connection error not yet
                # served): at most the events not otherwise accounted for are dropped.
                self._dropped += min(left, self._emitted - self._dropped - self._failed)
        return self.counters

    def __enter__(self) -> Emitter:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- inside ---------------------------------------------------------------------------

    def _new_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    def _encode(self, event: dict[str, Any]) -> bytes:
        try:
            return orjson.dumps(event)
        except TypeError as exc:
            raise EventValidationError(
                "<event>",
                "",
                f"cannot be written as JSON ({exc}); pass numbers, strings, "
                "booleans, None, lists and dicts",
            ) from None

    def _send(self, topic: str, data: bytes, key: str) -> None:
        if not self._open:
            raise RuntimeError("the emitter is closed")
        with self._lock:
            self._emitted += 1
        try:
            self._producer.produce(topic, data, key.encode())
        except BufferError:
            if self.block and self._wait_for_room(topic, data, key):
                return
            with self._lock:
                self._dropped += 1
        except Exception:  # noqa: BLE001 - never into the prediction path: counted
            with self._lock:
                self._failed += 1

    def _wait_for_room(self, topic: str, data: bytes, key: str) -> bool:
        """``block=True``: retry while deliveries make room, up to ``block_timeout``."""
        deadline = time.monotonic() + self.block_timeout
        while (wait := deadline - time.monotonic()) > 0:
            self._producer.poll(min(wait, 0.005))
            try:
                self._producer.produce(topic, data, key.encode())
            except BufferError:
                continue
            return True
        return False

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            with self._lock:
                self._failed += 1

    def _refused(self) -> None:
        """Count an event that could not even be made (see :func:`monitored`)."""
        with self._lock:
            self._emitted += 1
            self._dropped += 1

    def _on_error(self, error: Any) -> None:
        # Broker down and the like: librdkafka retries on its own; the counters tell the rest.
        if len(self._errors) < 100:
            self._errors.append(str(error))

    def _poll(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.1)


class AsyncEmitter(Emitter):
    """:class:`Emitter` for asyncio servers: the same calls (they never wait), ``async with``,
    and ``await aclose()``, which waits for pending events without blocking the event loop."""

    async def aclose(self) -> Counters:
        """:meth:`Emitter.close`, run in a thread."""
        import asyncio  # noqa: PLC0415

        return await asyncio.to_thread(self.close)

    async def __aenter__(self) -> AsyncEmitter:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


def monitored(
    emitter: Emitter,
    *,
    model_id: str,
    features: Sequence[str] | Callable[..., Mapping[str, Any]] | None = None,
    prediction: Callable[[Any], Any] | None = None,
    score: Callable[[Any], float | None] | None = None,
    model_version: str | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a predict function so that each call emits a prediction event.

    ``features``: the names of the function's arguments that are features, or a function of
    the call's arguments that returns the features (all the arguments by default).
    ``prediction`` and ``score`` read them from the return value (the prediction is the return
    value itself by default). The call's result is returned unchanged; an event the monitor
    would refuse is counted (``Emitter.counters``' ``dropped``) and never raised into the call.
    """

    def decorate(predict: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(predict)

        def inputs(*args: Any, **kwargs: Any) -> Mapping[str, Any]:
            if callable(features):
                return features(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            if features is None:
                return dict(bound.arguments)
            return {name: bound.arguments[name] for name in features}

        @functools.wraps(predict)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            result = predict(*args, **kwargs)
            try:
                emitter.emit_prediction(
                    model_id,
                    inputs(*args, **kwargs),
                    prediction(result) if prediction else result,
                    score=score(result) if score else None,
                    model_version=model_version,
                )
            except (EventValidationError, TypeError, KeyError):
                emitter._refused()  # never into the prediction path
            return result

        return wrapper

    return decorate


class _Collector:
    """The counters of one emitter as Prometheus counters."""

    def __init__(self, emitter: Emitter) -> None:
        self.emitter = emitter

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily  # noqa: PLC0415

        counters = self.emitter.counters
        family = CounterMetricFamily(
            "stream_monitor_emitter_events",
            "Events emitted by stream_monitor.integrations.client, by outcome.",
            labels=["outcome"],
        )
        for outcome in ("sent", "dropped", "failed"):
            family.add_metric([outcome], getattr(counters, outcome))
        yield family


def _secret(value: Any) -> Any:
    """A plain value for librdkafka (pydantic's SecretStr unwrapped)."""
    get = getattr(value, "get_secret_value", None)
    return get() if callable(get) else str(value) if isinstance(value, os.PathLike) else value
