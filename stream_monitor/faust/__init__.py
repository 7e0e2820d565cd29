"""Faust adapter: stream-monitor's monitors as faust-streaming agents (``pip install .[faust]``).

Add them to your app with :func:`attach`, or run the ready-made app::

    faust -A stream_monitor.faust.app worker -l info
"""

from stream_monitor.faust.adapter import FaustMonitor, attach, create_app

__all__ = ["FaustMonitor", "attach", "create_app"]
