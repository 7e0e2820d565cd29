"""The Open Inference Protocol v2 messages compiled from tests/data/oip_v2.proto by protoc
(grpcio-tools): what a model server writes, made without stream_monitor's own descriptors."""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from functools import cache
from pathlib import Path
from types import ModuleType

PROTO = Path(__file__).parent / "data" / "oip_v2.proto"


@cache
def messages() -> ModuleType:
    """The generated module (``ModelInferRequest``, ``ModelInferResponse``, ...)."""
    from grpc_tools import protoc

    out = Path(tempfile.mkdtemp(prefix="oip-"))
    code = protoc.main(["protoc", f"-I{PROTO.parent}", f"--python_out={out}", str(PROTO)])
    if code != 0:
        raise RuntimeError(f"protoc failed on {PROTO} (exit {code})")
    spec = importlib.util.spec_from_file_location("oip_v2_pb2", out / "oip_v2_pb2.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["oip_v2_pb2"] = module
    spec.loader.exec_module(module)
    return module
