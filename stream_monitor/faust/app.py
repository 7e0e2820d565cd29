"""The ready-made Faust app: ``faust -A stream_monitor.faust.app worker -l info``.

Configured like ``stream-monitor run``: ``STREAM_MONITOR_CONFIG`` names the config file and
``STREAM_MONITOR_*`` variables override it. The consumer group is ``kafka.group_id``.
"""

from stream_monitor.config import load_settings
from stream_monitor.faust.adapter import create_app
from stream_monitor.logs import configure_logging

settings = load_settings(None, {})
configure_logging(settings.logging)
app, monitor = create_app(settings)

__all__ = ["app", "monitor", "settings"]
