"""History of window summaries and alerts in a SQL database (SQLite or PostgreSQL).

``stream-monitor store`` consumes the metrics and alerts topics into it; the dashboard reads its
history from it. See ``docs/history.md`` for the schema and example queries.
"""

from stream_monitor.history.sql import Page, SqlHistory, open_history

__all__ = ["Page", "SqlHistory", "open_history"]
