"""``python -m stream_monitor``."""

from stream_monitor.cli import main

main()
