"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from stream_monitor.config import CONFIG_ENV_VAR

ENV_PREFIX = "STREAM_MONITOR_"
# Variables that belong to the test harness, not to the settings under test.
# STREAM_MONITOR_TEST_* say where a service is, STREAM_MONITOR_REQUIRE_* that CI needs it.
_HARNESS = ("STREAM_MONITOR_TEST_", "STREAM_MONITOR_REQUIRE_")
_HARNESS_NAMES = {"STREAM_MONITOR_ALERTMANAGER", "STREAM_MONITOR_ARTIFACTS"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without STREAM_MONITOR_* settings from the developer's shell."""
    import os

    for name in list(os.environ):
        harness = name.startswith(_HARNESS) or name in _HARNESS_NAMES
        if name.startswith(ENV_PREFIX) and not harness:
            monkeypatch.delenv(name)
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    yield
    structlog.reset_defaults()
