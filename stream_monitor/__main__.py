"""``python -m stream_monitor``."""

from stream_monitor.launch import main

main()
