"""Kafka plumbing shared by the runtime, the tools and the tests (aiokafka)."""

from stream_monitor.kafka.connection import client_kwargs, ssl_context

__all__ = ["client_kwargs", "ssl_context"]
