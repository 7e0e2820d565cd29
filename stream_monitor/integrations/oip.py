"""Open Inference Protocol v2 messages, as model servers put them on Kafka.

Seldon Core 2 writes each model's requests to ``seldon.<namespace>.model.<model>.inputs`` and its
responses to ``...outputs``, as protobuf ``inference.ModelInferRequest`` and
``inference.ModelInferResponse`` (the gRPC form of the protocol); other servers write the REST
form, JSON. Both read here into the REST form (``{"id", "model_name", "model_version",
"inputs" | "outputs": [{"name", "shape", "datatype", "data"}]}``), which
:mod:`stream_monitor.integrations.ingest` turns into rows.

The protobuf messages are described in code, field for field from the protocol's published
definition (``inference`` package, proto3), so no generated module and no ``protoc`` is needed.
Tensor data comes from the typed ``contents`` or from ``raw_*_contents`` (little-endian,
row-major, as the protocol specifies; BYTES as 4-byte length-prefixed strings).
"""

from __future__ import annotations

import struct
from functools import cache
from typing import Any

import orjson
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

__all__ = ["OipError", "read_request", "read_response", "request_class", "response_class"]

_F = descriptor_pb2.FieldDescriptorProto

# (struct format, contents field) per datatype.
_TYPES: dict[str, tuple[str, str]] = {
    "BOOL": ("?", "bool_contents"),
    "INT8": ("b", "int_contents"),
    "INT16": ("h", "int_contents"),
    "INT32": ("i", "int_contents"),
    "INT64": ("q", "int64_contents"),
    "UINT8": ("B", "uint_contents"),
    "UINT16": ("H", "uint_contents"),
    "UINT32": ("I", "uint_contents"),
    "UINT64": ("Q", "uint64_contents"),
    "FP16": ("e", ""),
    "FP32": ("f", "fp32_contents"),
    "FP64": ("d", "fp64_contents"),
    "BYTES": ("", "bytes_contents"),
}


class OipError(ValueError):
    """A message that is not an inference request or response of the protocol."""


def _field(
    message: descriptor_pb2.DescriptorProto,
    name: str,
    number: int,
    kind: int,
    *,
    repeated: bool = False,
    type_name: str = "",
) -> None:
    field = message.field.add(name=name, number=number, type=kind)
    field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if type_name:
        field.type_name = type_name


def _parameters(message: descriptor_pb2.DescriptorProto, number: int, path: str) -> None:
    """A ``map<string, InferParameter>`` field named parameters (``path``: the message's full
    name, for its entry type)."""
    entry = message.nested_type.add(name="ParametersEntry")
    entry.options.map_entry = True
    _field(entry, "key", 1, _F.TYPE_STRING)
    _field(entry, "value", 2, _F.TYPE_MESSAGE, type_name=".inference.InferParameter")
    _field(
        message,
        "parameters",
        number,
        _F.TYPE_MESSAGE,
        repeated=True,
        type_name=f".inference.{path}.ParametersEntry",
    )


def _message(
    file: descriptor_pb2.FileDescriptorProto, name: str, tensor: str, tensors: str
) -> descriptor_pb2.DescriptorProto:
    """A request or response: model name, version, id and parameters (fields 1 to 4), then the
    field ``tensors`` (5) of the nested ``tensor`` type."""
    message = file.message_type.add(name=name)
    _tensor(message, tensor)
    for number, field in enumerate(("model_name", "model_version", "id"), start=1):
        _field(message, field, number, _F.TYPE_STRING)
    _parameters(message, 4, name)
    type_name = f".inference.{name}.{tensor}"
    _field(message, tensors, 5, _F.TYPE_MESSAGE, repeated=True, type_name=type_name)
    return message


def _tensor(parent: descriptor_pb2.DescriptorProto, name: str) -> None:
    tensor = parent.nested_type.add(name=name)
    _field(tensor, "name", 1, _F.TYPE_STRING)
    _field(tensor, "datatype", 2, _F.TYPE_STRING)
    _field(tensor, "shape", 3, _F.TYPE_INT64, repeated=True)
    _parameters(tensor, 4, f"{parent.name}.{name}")
    _field(tensor, "contents", 5, _F.TYPE_MESSAGE, type_name=".inference.InferTensorContents")


@cache
def _pool() -> descriptor_pool.DescriptorPool:
    """The protocol's messages, in a pool of their own."""
    file = descriptor_pb2.FileDescriptorProto(
        name="stream_monitor/oip_v2.proto", package="inference", syntax="proto3"
    )
    parameter = file.message_type.add(name="InferParameter")
    parameter.oneof_decl.add(name="parameter_choice")
    for name, number, kind in (
        ("bool_param", 1, _F.TYPE_BOOL),
        ("int64_param", 2, _F.TYPE_INT64),
        ("string_param", 3, _F.TYPE_STRING),
    ):
        _field(parameter, name, number, kind)
        parameter.field[-1].oneof_index = 0
    contents = file.message_type.add(name="InferTensorContents")
    for name, number, kind in (
        ("bool_contents", 1, _F.TYPE_BOOL),
        ("int_contents", 2, _F.TYPE_INT32),
        ("int64_contents", 3, _F.TYPE_INT64),
        ("uint_contents", 4, _F.TYPE_UINT32),
        ("uint64_contents", 5, _F.TYPE_UINT64),
        ("fp32_contents", 6, _F.TYPE_FLOAT),
        ("fp64_contents", 7, _F.TYPE_DOUBLE),
        ("bytes_contents", 8, _F.TYPE_BYTES),
    ):
        _field(contents, name, number, kind, repeated=True)
    request = _message(file, "ModelInferRequest", "InferInputTensor", "inputs")
    requested = request.nested_type.add(name="InferRequestedOutputTensor")
    _field(requested, "name", 1, _F.TYPE_STRING)
    _parameters(requested, 2, "ModelInferRequest.InferRequestedOutputTensor")
    _field(
        request,
        "outputs",
        6,
        _F.TYPE_MESSAGE,
        repeated=True,
        type_name=".inference.ModelInferRequest.InferRequestedOutputTensor",
    )
    _field(request, "raw_input_contents", 7, _F.TYPE_BYTES, repeated=True)
    response = _message(file, "ModelInferResponse", "InferOutputTensor", "outputs")
    _field(response, "raw_output_contents", 6, _F.TYPE_BYTES, repeated=True)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return pool


def request_class() -> type[Message]:
    """The ``inference.ModelInferRequest`` message class."""
    cls: type[Message] = message_factory.GetMessageClass(
        _pool().FindMessageTypeByName("inference.ModelInferRequest")
    )
    return cls


def response_class() -> type[Message]:
    """The ``inference.ModelInferResponse`` message class."""
    cls: type[Message] = message_factory.GetMessageClass(
        _pool().FindMessageTypeByName("inference.ModelInferResponse")
    )
    return cls


def _raw(datatype: str, raw: bytes, name: str) -> list[Any]:
    fmt = _TYPES[datatype][0]
    if datatype == "BYTES":
        values, at = [], 0
        while at < len(raw):
            if at + 4 > len(raw):
                raise OipError(f"tensor {name!r}: BYTES raw contents end inside a length")
            (size,) = struct.unpack_from("<I", raw, at)
            values.append(raw[at + 4 : at + 4 + size].decode("utf-8", "replace"))
            at += 4 + size
        return values
    width = struct.calcsize(fmt)
    if len(raw) % width:
        raise OipError(f"tensor {name!r}: {len(raw)} raw bytes are not whole {datatype} values")
    return list(struct.unpack(f"<{len(raw) // width}{fmt}", raw))


def _tensors(tensors: Any, raw: Any) -> list[dict[str, Any]]:
    if raw and len(raw) != len(tensors):
        raise OipError(f"{len(raw)} raw contents for {len(tensors)} tensors")
    out = []
    for i, tensor in enumerate(tensors):
        datatype = tensor.datatype.upper()
        if datatype not in _TYPES:
            raise OipError(f"tensor {tensor.name!r}: unknown datatype {tensor.datatype!r}")
        if raw:
            data = _raw(datatype, raw[i], tensor.name)
        else:
            field = _TYPES[datatype][1]
            if not field:
                raise OipError(f"tensor {tensor.name!r}: {datatype} must come as raw contents")
            data = list(getattr(tensor.contents, field))
            if datatype == "BYTES":
                data = [v.decode("utf-8", "replace") for v in data]
        out.append(
            {"name": tensor.name, "datatype": datatype, "shape": list(tensor.shape), "data": data}
        )
    return out


def _parse(value: bytes, cls: type[Message]) -> Any:
    message = cls()
    try:
        message.ParseFromString(value)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise OipError(f"not a protobuf {cls.DESCRIPTOR.name} ({exc})") from None
    return message


def _json(value: bytes, key: str) -> dict[str, Any]:
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise OipError(f"not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise OipError(f"a JSON {key[:-1]} message needs an {key!r} list of tensors")
    return data


def _read(
    value: bytes | None, fmt: str, cls: type[Message], tensors: str, raw: str
) -> dict[str, Any]:
    """A message (``fmt``: protobuf or json) in the REST form, its ``tensors`` under their name."""
    if not value:
        raise OipError("the record has no value")
    if fmt == "json":
        return _json(value, tensors)
    message = _parse(value, cls)
    if not getattr(message, tensors):
        raise OipError(f"a {cls.DESCRIPTOR.name} without {tensors}")
    return {
        "id": message.id,
        "model_name": message.model_name,
        "model_version": message.model_version,
        tensors: _tensors(getattr(message, tensors), getattr(message, raw)),
    }


def read_request(value: bytes | None, fmt: str) -> dict[str, Any]:
    """A request (``fmt``: protobuf or json) in the REST form."""
    return _read(value, fmt, request_class(), "inputs", "raw_input_contents")


def read_response(value: bytes | None, fmt: str) -> dict[str, Any]:
    """A response (``fmt``: protobuf or json) in the REST form."""
    return _read(value, fmt, response_class(), "outputs", "raw_output_contents")
