"""Which commands start again on the C allocator (stream_monitor.launch)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stream_monitor.launch import system_allocator_command


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (["stream-monitor", "run", "--config", "c.yaml"], {}, ["run", "--config", "c.yaml"]),
        # an explicit choice is kept, whatever it is
        (["stream-monitor", "run"], {"PYTHONMALLOC": "pymalloc"}, None),
        (["stream-monitor", "run"], {"PYTHONMALLOC": "malloc"}, None),
        # short commands keep Python's allocator (its speed, no restart)
        (["stream-monitor", "backtest", "events.jsonl"], {}, None),
        (["stream-monitor", "--version"], {}, None),
        (["stream-monitor"], {}, None),
    ],
)
def test_only_long_running_commands_start_again_on_the_c_allocator(
    argv: list[str], environ: dict[str, str], expected: list[str] | None
) -> None:
    command = system_allocator_command(argv, environ, "/usr/bin/python3")
    if expected is None:
        assert command is None
    else:
        assert command == ["/usr/bin/python3", "-m", "stream_monitor", *expected]


def test_without_an_interpreter_path_nothing_starts_again() -> None:
    assert system_allocator_command(["stream-monitor", "run"], {}, "") is None


def test_the_command_line_still_answers_through_the_launcher() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "stream_monitor", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip()
