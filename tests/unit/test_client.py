"""stream_monitor.integrations.client without a broker: validation, ids, counters, the decorator."""

from __future__ import annotations

import socket
import time

import orjson
import pytest
from prometheus_client import CollectorRegistry

from stream_monitor.errors import EventValidationError
from stream_monitor.integrations.client import AsyncEmitter, Emitter, monitored

# A port bound and never listened on: connections to it are refused for as long as the tests run
# (a port merely free might be taken by another process meanwhile).
_HELD = socket.socket()
_HELD.bind(("127.0.0.1", 0))
NOWHERE = f"127.0.0.1:{_HELD.getsockname()[1]}"


def nowhere(**options: object) -> Emitter:
    """An emitter whose broker never answers."""
    return Emitter(NOWHERE, close_timeout=0.1, **options)  # type: ignore[arg-type]


def test_a_bad_call_raises_at_once_naming_the_field() -> None:
    with nowhere() as emitter:
        with pytest.raises(EventValidationError) as bad:
            emitter.emit_prediction("fraud", {"amount": 1.0}, prediction=1, score="high")  # type: ignore[arg-type]
        assert bad.value.field == "score"
        with pytest.raises(EventValidationError) as bad:
            emitter.emit_prediction("", {"amount": 1.0}, prediction=1)
        assert bad.value.field == "model_id"
        with pytest.raises(EventValidationError) as bad:
            emitter.emit_prediction("fraud", {"amount": object()}, prediction=1)
        assert "cannot be written as JSON" in bad.value.reason
        with pytest.raises(EventValidationError) as bad:
            emitter.emit_label("e1", "fraud", label={"no": "dicts"})
        assert bad.value.field == "label"
        assert emitter.counters.emitted == 0  # refused calls are not events


def test_ids_are_unique_and_events_wait_while_the_broker_is_away() -> None:
    emitter = nowhere()
    ids = {
        emitter.emit_prediction("fraud", {"amount": float(i)}, prediction=i % 2) for i in range(50)
    }
    given = emitter.emit_prediction("fraud", {"amount": 1.0}, prediction=0, event_id="mine")
    emitter.emit_label(given, "fraud", label=1)
    assert len(ids) == 50
    assert given == "mine"
    pending = emitter.counters
    assert (pending.emitted, pending.pending, pending.sent) == (52, 52, 0)
    closed = emitter.close()  # nothing can be delivered: the rest counts as dropped
    assert (closed.emitted, closed.dropped, closed.pending, closed.sent) == (52, 52, 0, 0)
    with pytest.raises(RuntimeError, match="closed"):
        emitter.emit_prediction("fraud", {"amount": 1.0}, prediction=0)


def test_a_full_buffer_drops_and_counts_or_blocks_at_most_the_bound() -> None:
    with nowhere(buffer=10) as dropping:
        for i in range(25):
            dropping.emit_prediction("fraud", {"amount": float(i)}, prediction=0)
        counters = dropping.counters
        assert (counters.emitted, counters.dropped, counters.pending) == (25, 15, 10)
    with nowhere(buffer=5, block=True, block_timeout=0.02) as blocking:
        started = time.monotonic()
        for i in range(8):
            blocking.emit_prediction("fraud", {"amount": float(i)}, prediction=0)
        took = time.monotonic() - started
        assert blocking.counters.dropped == 3
    assert took >= 3 * 0.02  # each of the 3 waited for room, up to the bound


def test_counters_are_prometheus_counters_and_unknown_settings_are_refused() -> None:
    registry = CollectorRegistry()
    with nowhere(buffer=1, registry=registry) as emitter:
        emitter.emit_prediction("fraud", {"amount": 1.0}, prediction=0)
        emitter.emit_prediction("fraud", {"amount": 2.0}, prediction=0)
        assert (
            registry.get_sample_value("stream_monitor_emitter_events_total", {"outcome": "dropped"})
            == 1.0
        )
    with pytest.raises(TypeError, match="unknown connection setting 'sasl_pasword'"):
        Emitter("127.0.0.1:1", sasl_pasword="x")


def test_the_decorator_emits_inputs_and_output_and_never_raises_into_the_call() -> None:
    with nowhere() as emitter:

        @monitored(emitter, model_id="fraud", features=["amount", "country"])
        def predict(amount: float, country: str, debug: bool = False) -> int:
            return int(amount > 100)

        assert predict(150.0, "FR") == 1
        assert predict(amount=5.0, country="DE", debug=True) == 0

        @monitored(
            emitter,
            model_id="fraud",
            prediction=lambda out: out["label"],
            score=lambda out: out["p"],
        )
        def scored(amount: float) -> dict[str, object]:
            return {"label": 1, "p": "high"}  # a score the monitor refuses

        assert scored(1.0) == {"label": 1, "p": "high"}  # the call is unharmed
        assert emitter.counters.emitted == 3
        assert emitter.counters.dropped == 1  # the refused event, counted


async def test_the_async_emitter_closes_without_blocking_the_loop() -> None:
    async with AsyncEmitter(NOWHERE, close_timeout=0.1) as emitter:
        with pytest.raises(EventValidationError, match="probably seconds"):
            emitter.emit_prediction("fraud", {"amount": 1.0}, prediction=0, timestamp=1)
        event_id = emitter.emit_prediction("fraud", {"amount": 1.0}, prediction=0)
        assert event_id
    # dropped at close, once, whatever librdkafka still queued of its own (a connection error)
    assert emitter.counters.dropped == 1
    assert emitter.counters.sent == 0
    assert orjson.loads(orjson.dumps({"id": event_id}))["id"] == event_id
