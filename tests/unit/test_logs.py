"""Logging: console in dev, JSON in prod, batch context bound to every line."""

from __future__ import annotations

import io
import json
import logging

from stream_monitor.config.settings import LoggingSettings
from stream_monitor.logs import batch_context, configure_logging, get_logger


def test_json_lines_carry_batch_context() -> None:
    stream = io.StringIO()
    configure_logging(LoggingSettings(format="json", level="INFO"), stream=stream)
    log = get_logger("agent")
    with batch_context("predictions", 3, 100, 199, model_id="fraud"):
        log.info("batch processed", events=100)
    log.info("outside")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["event"] == "batch processed"
    assert (first["topic"], first["partition"], first["offsets"], first["model_id"]) == (
        "predictions",
        3,
        "100-199",
        "fraud",
    )
    assert first["level"] == "info"
    assert first["component"] == "agent"
    assert "timestamp" in first
    assert "topic" not in second


def test_console_renderer_and_level_filter() -> None:
    stream = io.StringIO()
    configure_logging(LoggingSettings(format="console", level="WARNING"), stream=stream)
    log = get_logger("agent")
    log.info("hidden")
    log.warning("shown", partition=1)
    output = stream.getvalue()
    assert "hidden" not in output
    assert "shown" in output
    assert "partition=1" in output
    assert not output.lstrip().startswith("{")


def test_standard_library_logs_use_the_same_renderer() -> None:
    stream = io.StringIO()
    configure_logging(LoggingSettings(format="json", level="INFO"), stream=stream)
    logging.getLogger("aiokafka").warning("coordinator moved")
    logging.getLogger("aiokafka").info("chatty detail")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["coordinator moved"]
    assert lines[0]["level"] == "warning"


def test_debug_lets_library_logs_through() -> None:
    stream = io.StringIO()
    configure_logging(LoggingSettings(format="json", level="DEBUG"), stream=stream)
    logging.getLogger("aiokafka").debug("fetch")
    assert "fetch" in stream.getvalue()
