"""The web dashboard: live per-model charts and alerts, read from the output topics."""

from stream_monitor.dashboard.app import Dashboard, serve
from stream_monitor.dashboard.store import DashboardStore

__all__ = ["Dashboard", "DashboardStore", "serve"]
