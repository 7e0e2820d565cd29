"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from stream_monitor.config import CONFIG_ENV_VAR

ENV_PREFIX = "STREAM_MONITOR_"
# Variables that belong to the test harness, not to the settings under test.
# STREAM_MONITOR_TEST_* say where a service is, STREAM_MONITOR_REQUIRE_* that CI needs it.
_HARNESS = ("STREAM_MONITOR_TEST_", "STREAM_MONITOR_REQUIRE_")
_HARNESS_NAMES = {"STREAM_MONITOR_ALERTMANAGER", "STREAM_MONITOR_ARTIFACTS"}
# Set by CI (.ci/run): every test must run there, so a skip of any cause is a failure.
REQUIRE_ALL = "STREAM_MONITOR_REQUIRE_ALL"


def _fail_a_skip(report: Any) -> None:
    """With ``STREAM_MONITOR_REQUIRE_ALL=1``, turn a skipped report into a failure that gives
    the skip's reason."""
    if os.environ.get(REQUIRE_ALL) != "1" or not report.skipped or hasattr(report, "wasxfail"):
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else longrepr
    report.outcome = "failed"
    report.longrepr = f"skipped, and {REQUIRE_ALL}=1 (CI) runs every test: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """A skipped test fails in CI (see :func:`_fail_a_skip`)."""
    outcome = yield
    _fail_a_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[Any]:
    """The same for a module skipped as a whole (``pytest.importorskip``)."""
    outcome = yield
    _fail_a_skip(outcome.get_result())


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without STREAM_MONITOR_* settings from the developer's shell."""
    for name in list(os.environ):
        harness = name.startswith(_HARNESS) or name in _HARNESS_NAMES
        if name.startswith(ENV_PREFIX) and not harness:
            monkeypatch.delenv(name)
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)
    yield
    structlog.reset_defaults()
