"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from stream_monitor.config import CONFIG_ENV_VAR

ENV_PREFIX = "STREAM_MONITOR_"
# Variables that belong to the test harness, not to the settings under test.
_HARNESS = {"STREAM_MONITOR_TEST_BOOTSTRAP", "STREAM_MONITOR_REQUIRE_BROKER"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without STREAM_MONITOR_* settings from the developer's shell."""
    import os

    for name in list(os.environ):
        if name.startswith(ENV_PREFIX) and name not in _HARNESS:
            monkeypatch.delenv(name)
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    yield
    structlog.reset_defaults()
