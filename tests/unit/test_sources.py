"""Open Inference Protocol v2 sources: real protobuf messages (compiled by protoc from the
protocol's definition) read into rows, and the request/response join (pure logic)."""

from __future__ import annotations

import struct
from typing import Any

import orjson
import pytest

from stream_monitor.config.settings import SourceSpec
from stream_monitor.events import EventCodec
from stream_monitor.integrations.oip import OipError, read_request, read_response
from stream_monitor.integrations.sources import Joined, OipJoin, Record
from tests.oip_messages import messages

T0 = 1_795_800_000_000


def request(
    request_id: str, rows: list[list[float]], *, raw: bool = False, model: str = "income"
) -> bytes:
    m = messages().ModelInferRequest(model_name=model, model_version="v3", id=request_id)
    tensor = m.inputs.add(name="x", datatype="FP64", shape=[len(rows), len(rows[0])])
    flat = [v for row in rows for v in row]
    if raw:
        m.raw_input_contents.append(struct.pack(f"<{len(flat)}d", *flat))
    else:
        tensor.contents.fp64_contents.extend(flat)
    return bytes(m.SerializeToString())


def response(request_id: str, classes: list[int], probabilities: list[float]) -> bytes:
    m = messages().ModelInferResponse(model_name="income", id=request_id)
    label = m.outputs.add(name="label", datatype="INT64", shape=[len(classes)])
    label.contents.int64_contents.extend(classes)
    proba = m.outputs.add(name="proba", datatype="FP32", shape=[len(classes), 2])
    proba.contents.fp32_contents.extend(v for p in probabilities for v in (1 - p, p))
    return bytes(m.SerializeToString())


def test_protobuf_requests_read_into_the_rest_form_from_typed_or_raw_contents() -> None:
    typed = read_request(request("r1", [[1.5, 2.0], [3.0, 4.25]]), "protobuf")
    raw = read_request(request("r1", [[1.5, 2.0], [3.0, 4.25]], raw=True), "protobuf")
    assert typed == raw
    assert typed["id"] == "r1"
    assert typed["model_name"] == "income"
    assert typed["inputs"] == [
        {"name": "x", "datatype": "FP64", "shape": [2, 2], "data": [1.5, 2.0, 3.0, 4.25]}
    ]
    out = read_response(response("r1", [0, 1], [0.25, 0.75]), "protobuf")
    assert [t["name"] for t in out["outputs"]] == ["label", "proba"]
    assert out["outputs"][0]["data"] == [0, 1]


def test_bytes_and_integer_tensors_read_from_raw_contents() -> None:
    m = messages().ModelInferRequest(id="r")
    m.inputs.add(name="city", datatype="BYTES", shape=[2])
    m.inputs.add(name="age", datatype="INT32", shape=[2])
    m.raw_input_contents.append(struct.pack("<I", 5) + b"Paris" + struct.pack("<I", 4) + b"Rome")
    m.raw_input_contents.append(struct.pack("<2i", 31, -4))
    tensors = read_request(m.SerializeToString(), "protobuf")["inputs"]
    assert [t["data"] for t in tensors] == [["Paris", "Rome"], [31, -4]]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xff\xff", "not a protobuf ModelInferRequest"),
        (b"", "has no value"),
        (messages().ModelInferRequest(id="r").SerializeToString(), "without inputs"),
    ],
)
def test_what_is_not_a_request_is_refused_with_the_reason(value: bytes, reason: str) -> None:
    with pytest.raises(OipError, match=reason):
        read_request(value, "protobuf")


def test_raw_contents_must_fit_their_datatype() -> None:
    m = messages().ModelInferRequest(id="r")
    m.inputs.add(name="x", datatype="FP32", shape=[1])
    m.raw_input_contents.append(b"\x00\x00\x80")
    with pytest.raises(OipError, match="3 raw bytes are not whole FP32 values"):
        read_request(m.SerializeToString(), "protobuf")
    m.inputs[0].datatype = "COMPLEX"
    with pytest.raises(OipError, match="unknown datatype 'COMPLEX'"):
        read_request(m.SerializeToString(), "protobuf")


def spec(**overrides: Any) -> SourceSpec:
    data: dict[str, Any] = {
        "name": "income",
        "requests": "in",
        "responses": "out",
        "features": ["amount", "age"],
        "prediction": "label",
        "score": "proba",
        "ttl": 10,
        "max_pending": 3,
    }
    return SourceSpec(**{**data, **overrides})


def record(topic: str, offset: int, value: bytes, at: int = 0, **kw: Any) -> Record:
    return Record(topic, 0, offset, T0 + at, kw.get("key"), value, kw.get("headers", ()))


def events(out: Joined) -> list[dict[str, Any]]:
    return [orjson.loads(value) for value, _ in out.events]


def test_a_pair_joins_in_either_order_into_one_event_per_row() -> None:
    join = OipJoin(spec(), EventCodec())
    out = Joined()
    join.take(record("out", 0, response("a", [0, 1], [0.25, 0.75]), at=5), out)
    assert out.events == []
    assert join.floor("out", 0) == 0
    join.take(record("in", 0, request("a", [[120.0, 31], [15.5, 40]]), at=1), out)
    assert events(out) == [
        {
            "event_id": "a-0",
            "model_id": "income",
            "timestamp": T0 + 1,
            "features": {"amount": 120.0, "age": 31.0},
            "prediction": 0,
            "score": 0.25,
            "model_version": "v3",
        },
        {
            "event_id": "a-1",
            "model_id": "income",
            "timestamp": T0 + 1,
            "features": {"amount": 15.5, "age": 40.0},
            "prediction": 1,
            "score": 0.75,
            "model_version": "v3",
        },
    ]
    assert all(key == b"income" for _, key in out.events)
    assert join.floor("out", 0) is None
    assert not join.pending
    # The request first, one row: the event id is the request id
    join.take(record("in", 1, request("b", [[1.0, 2.0]]), at=6), out)
    join.take(record("out", 1, response("b", [1], [0.9]), at=7), out)
    assert events(out)[-1]["event_id"] == "b"
    assert join.counts["matched"] == 2
    assert join.counts["produced"] == 3


def test_the_request_id_comes_from_the_key_or_the_x_request_id_header() -> None:
    join = OipJoin(spec(), EventCodec())
    out = Joined()
    join.take(record("in", 0, request("", [[1.0, 2.0]]), key=b"k1"), out)
    join.take(record("out", 0, response("", [1], [0.6]), headers=(("x-request-id", b"k1"),)), out)
    assert [e["event_id"] for e in events(out)] == ["k1"]
    join.take(record("in", 1, request("", [[1.0, 2.0]])), out)
    assert [d.error.field for d in out.dead] == ["id"]
    assert "no request id" in out.dead[0].error.reason


def test_default_outputs_give_the_most_probable_class_and_its_score() -> None:
    join = OipJoin(spec(prediction=None, score=None, features=None), EventCodec())
    m = messages().ModelInferResponse(id="a")
    proba = m.outputs.add(name="proba", datatype="FP32", shape=[1, 2])
    proba.contents.fp32_contents.extend([0.25, 0.75])
    out = Joined()
    join.take(record("in", 0, request("a", [[1.0, 2.0]])), out)
    join.take(record("out", 0, m.SerializeToString()), out)
    (event,) = events(out)
    assert (event["prediction"], event["score"]) == (1, 0.75)
    assert event["features"] == {"x_0": 1.0, "x_1": 2.0}


def test_pairs_that_do_not_fit_go_to_dead_letters_both_halves() -> None:
    join = OipJoin(spec(), EventCodec())
    out = Joined()
    join.take(record("in", 0, request("a", [[1.0, 2.0], [3.0, 4.0]])), out)
    join.take(record("out", 0, response("a", [1], [0.6])), out)
    assert out.events == []
    assert [(d.record.topic, d.error.field) for d in out.dead] == [
        ("in", "<pair>"),
        ("out", "<pair>"),
    ]
    assert "2 request rows but 1 response rows" in out.dead[0].error.reason
    join.take(record("in", 1, request("b", [[1.0, 2.0]])), out)
    join.take(record("out", 1, response("b", [1], [0.6]).replace(b"proba", b"other")), out)
    assert "has no output 'proba'" in out.dead[-1].error.reason
    join.take(record("out", 2, b"\x08"), out)
    assert out.dead[-1].error.field == "<response>"
    assert join.counts["refused"] == 2
    assert join.counts["malformed"] == 1


def test_waiting_is_bounded_by_record_time_and_by_count() -> None:
    join = OipJoin(spec(), EventCodec())
    out = Joined()
    join.take(record("in", 0, request("a", [[1.0, 2.0]]), at=0), out)
    join.take(record("in", 1, request("b", [[1.0, 2.0]]), at=5_000), out)
    assert join.floor("in", 0) == 0
    join.take(record("in", 2, request("c", [[1.0, 2.0]]), at=10_000), out)  # a: 10 s waited
    assert [d.record.offset for d in out.dead] == [0]
    assert "no response within ttl 10 s" in out.dead[0].error.reason
    assert join.floor("in", 0) == 1
    for offset, rid in enumerate("def", start=3):
        join.take(record("in", offset, request(rid, [[1.0, 2.0]]), at=10_001), out)
    # max_pending 3: b and c are pushed out, oldest first
    assert [d.record.offset for d in out.dead] == [0, 1, 2]
    assert "evicted: more than max_pending 3" in out.dead[-1].error.reason
    assert join.counts["expired"] == 1
    assert join.counts["evicted"] == 2
    join.drop({("in", 0)})
    assert not join.pending


def test_a_request_id_seen_twice_dead_letters_the_first() -> None:
    join = OipJoin(spec(), EventCodec())
    out = Joined()
    join.take(record("in", 0, request("a", [[1.0, 2.0]])), out)
    join.take(record("in", 1, request("a", [[5.0, 6.0]])), out)
    assert [d.record.offset for d in out.dead] == [0]
    join.take(record("out", 0, response("a", [1], [0.6])), out)
    assert events(out)[0]["features"] == {"amount": 5.0, "age": 6.0}


def test_json_sources_read_the_rest_form() -> None:
    join = OipJoin(spec(format="json", model_id="fraud"), EventCodec())
    out = Joined()
    body = {
        "id": "a",
        "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}],
    }
    answer = {
        "id": "a",
        "outputs": [
            {"name": "label", "shape": [1], "datatype": "INT64", "data": [1]},
            {"name": "proba", "shape": [1, 2], "datatype": "FP32", "data": [[0.3, 0.7]]},
        ],
    }
    join.take(record("in", 0, orjson.dumps(body)), out)
    join.take(record("out", 0, orjson.dumps(answer)), out)
    assert events(out)[0]["model_id"] == "fraud"
    assert events(out)[0]["score"] == 0.7
    join.take(record("in", 1, b'{"id": "b"}'), out)
    assert "needs an 'inputs' list" in out.dead[-1].error.reason


def _shape(descriptor: Any) -> list[Any]:
    """Every field of a message and of its nested messages: name, number, type, repeated,
    packed, and the full name of its message type."""
    fields = [
        (
            f.name,
            f.number,
            f.type,
            f.is_repeated,
            f.is_packed,
            f.message_type.full_name if f.message_type else None,
        )
        for f in descriptor.fields
    ]
    nested = [_shape(n) for n in sorted(descriptor.nested_types, key=lambda n: n.name)]
    return [descriptor.full_name, sorted(fields), nested]


def test_the_package_messages_are_those_protoc_compiles_from_the_protocol() -> None:
    from stream_monitor.integrations.oip import request_class, response_class

    assert _shape(request_class().DESCRIPTOR) == _shape(messages().ModelInferRequest.DESCRIPTOR)
    assert _shape(response_class().DESCRIPTOR) == _shape(messages().ModelInferResponse.DESCRIPTOR)
