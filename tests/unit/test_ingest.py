"""KServe CloudEvents to prediction events, as pure logic (the HTTP and broker side is an
integration test)."""

from __future__ import annotations

import orjson
import pytest

from stream_monitor.config import load_settings
from stream_monitor.integrations.ingest import (
    CloudEvent,
    Ingest,
    IngestError,
    events_of,
    read_cloudevent,
)


def event(kind: str, data: object, event_id: str = "e1", model: str | None = "m") -> CloudEvent:
    return CloudEvent(event_id, f"org.kubeflow.serving.inference.{kind}", model, 1_000, data)


def test_cloudevents_are_read_in_both_modes_and_refused_with_the_reason() -> None:
    binary = read_cloudevent(
        {"Ce-Id": "a", "Ce-Type": "t.request", "ce-time": "2026-11-27T10:00:00.5Z"}, b"{}"
    )
    assert (binary.id, binary.type, binary.time) == ("a", "t.request", 1_795_773_600_500)
    structured = read_cloudevent(
        {"Content-Type": "application/cloudevents+json"},
        orjson.dumps({"id": "b", "type": "t", "data": '{"x": 1}'}),
    )
    assert structured.data == {"x": 1}
    with pytest.raises(IngestError, match="no 'id'"):
        read_cloudevent({"ce-type": "t"}, b"{}")
    with pytest.raises(IngestError, match="not JSON"):
        read_cloudevent({"ce-id": "a", "ce-type": "t"}, b"{")
    with pytest.raises(IngestError, match="RFC 3339"):
        read_cloudevent({"ce-id": "a", "ce-type": "t", "ce-time": "yesterday"}, b"{}")
    with pytest.raises(IngestError, match="JSON object"):
        read_cloudevent({"Content-Type": "application/cloudevents+json"}, b"[1]")


def test_v2_tensors_a_column_each_and_rows_as_objects() -> None:
    request = event(
        "request",
        {
            "inputs": [
                {"name": "amount", "shape": [2], "datatype": "FP32", "data": [1.0, 2.0]},
                {"name": "age", "shape": [2, 1], "datatype": "INT32", "data": [[30], [40]]},
            ]
        },
    )
    response = event(
        "response", {"outputs": [{"name": "y", "shape": [2, 2], "data": [0.1, 0.9, 0.7, 0.3]}]}
    )
    first, second = events_of(request, response, "m", None)
    assert first["features"] == {"amount": 1.0, "age": 30}
    assert (first["prediction"], first["score"]) == (1, 0.9)
    assert (second["event_id"], second["prediction"]) == ("e1-1", 0)
    objects = event("request", {"instances": [{"a": "x"}]})
    [one] = events_of(objects, event("response", {"predictions": ["yes"]}), "m", None)
    assert (one["event_id"], one["features"], one["prediction"]) == ("e1", {"a": "x"}, "yes")
    assert "score" not in one


@pytest.mark.parametrize(
    ("request_data", "response_data", "reason"),
    [
        (
            {"inputs": [{"name": "x", "shape": [2, 2], "data": [1, 2, 3]}]},
            {"predictions": [1]},
            "does not hold 3",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "FP32", "data": [1]}]},
            {"predictions": [1]},
            "needs name, shape and data",
        ),
        ({"instances": [[1], [2]]}, {"predictions": [1]}, "2 request rows but 1 response rows"),
        ({"instances": []}, {"predictions": []}, "non-empty list"),
        ({"instances": [[1]]}, {"scores": [1]}, "neither predictions"),
        (
            {
                "inputs": [
                    {"name": "a", "shape": [2], "data": [1, 2]},
                    {"name": "b", "shape": [1], "data": [1]},
                ]
            },
            {"predictions": [1, 2]},
            "must all be of shape",
        ),
    ],
)
def test_payloads_that_do_not_hold_together_are_refused(
    request_data: object, response_data: object, reason: str
) -> None:
    with pytest.raises(IngestError, match=reason):
        events_of(event("request", request_data), event("response", response_data), "m", None)


def test_the_join_keeps_halves_until_their_pair_evicting_and_expiring_the_rest() -> None:
    join = Ingest(load_settings(None, {}), max_pending=2, ttl=3600)
    assert join.take(event("request", {}, "a")) is None
    assert join.take(event("request", {}, "b")) is None
    assert join.take(event("request", {}, "c")) is None  # evicts a
    assert join.counts["evicted"] == 1
    request, response = join.take(event("response", {}, "b"))  # type: ignore[misc]
    assert (request.id, "response" in response.type) == ("b", True)
    join.ttl = 0.0
    join.take(event("request", {}, "d", model=None))  # expires c first
    assert join.counts["expired"] == 1
    assert list(join.pending) == ["d"]
    join.ttl = 3600
    with pytest.raises(IngestError, match="pass --model-id"):
        join._values(event("response", {"predictions": [1]}, "d", model=None))
