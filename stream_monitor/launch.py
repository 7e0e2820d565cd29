"""Entry point of the ``stream-monitor`` command: long-running commands on the C allocator.

Python's own allocator (pymalloc) takes memory in 1 MiB arenas and hands an arena back only
when every object in it is gone. A worker whose models close their windows together builds
thousands of summary objects at once; the few objects that outlive them (the next windows'
state) stay scattered over those arenas, so the burst stays resident: in the memory benchmark,
1,000 models just after a close took anywhere from 60 to 115 MB depending on where such objects
happened to land. On the C library's allocator (``PYTHONMALLOC=malloc``) freed memory goes back
to the heap, which the worker trims page by page (``malloc_trim``, see
``monitor.registry.release_memory``): the same state takes 54 MB both just after a close and
half way through a window, at a few percent of speed.

So the commands that run for long (``run``) start again, once, on the C allocator unless
``PYTHONMALLOC`` is already set (set it to ``pymalloc`` to keep Python's). The process keeps its
id: ``exec`` replaces the program, not the process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

__all__ = ["LONG_RUNNING", "main", "system_allocator_command"]

LONG_RUNNING = frozenset({"run"})


def system_allocator_command(
    argv: Sequence[str], environ: Mapping[str, str], executable: str
) -> list[str] | None:
    """The command that starts ``argv`` again on the C allocator, or None to go on as is."""
    if os.name != "posix" or "PYTHONMALLOC" in environ or not executable:
        return None
    command = next((arg for arg in argv[1:] if not arg.startswith("-")), None)
    if command not in LONG_RUNNING:
        return None
    return [executable, "-m", "stream_monitor", *argv[1:]]


def main() -> None:
    """Console-script entry point."""
    again = system_allocator_command(sys.argv, os.environ, sys.executable)
    if again is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        # the same interpreter, module and arguments: nothing from outside the process
        os.execve(again[0], again, {**os.environ, "PYTHONMALLOC": "malloc"})  # noqa: S606
    from stream_monitor.cli import main as cli_main  # noqa: PLC0415 - after the exec decision

    cli_main()
