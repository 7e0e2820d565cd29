"""The Open Inference Protocol messages' former import path, kept for code that builds them: it
now lives in :mod:`stream_monitor.integrations.oip`."""

from stream_monitor.integrations.oip import (
    OipError,
    read_request,
    read_response,
    request_class,
    response_class,
)

__all__ = ["OipError", "read_request", "read_response", "request_class", "response_class"]
