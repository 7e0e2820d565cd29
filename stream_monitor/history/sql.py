"""One small SQL store for window summaries (every revision) and alerts, on SQLite or PostgreSQL.

The two databases differ here only in placeholders, the JSON column type and how they connect;
every statement is portable otherwise (``INSERT ... ON CONFLICT`` exists in both). A write is one
transaction holding the rows *and* the consumer's next offsets, so a crash between the two cannot
happen and a replay (rows already there) inserts nothing. Derived tables (``models``,
``incidents``) keep the dashboard's overview cheap at millions of windows.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from stream_monitor.errors import StreamMonitorError
from stream_monitor.events.alerts import incident_status
from stream_monitor.history.schema import SCHEMA, SCHEMA_VERSION

__all__ = ["HistoryError", "Page", "SqlHistory", "open_history", "redacted"]

_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


class HistoryError(StreamMonitorError):
    """The history database cannot be opened, or holds something this version cannot read."""


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages and logs)."""
    return _PASSWORD.sub(r"\1***@", url)


@dataclass
class Page:
    """What one write adds: summaries, alerts and the next offset of each topic partition."""

    summaries: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.summaries) + len(self.alerts)


@dataclass(frozen=True)
class Written:
    """Rows a write inserted (replayed records insert nothing)."""

    summaries: int
    alerts: int


class SqlHistory:
    """Summaries and alerts in one database; safe to share between threads (one at a time)."""

    def __init__(self, connection: Any, *, postgres: bool, where: str) -> None:
        self._db = connection
        self._postgres = postgres
        self.where = where
        self._lock = threading.Lock()
        with self._transaction() as cur:
            for statement in SCHEMA:
                cur.execute(statement.format(json="JSONB" if postgres else "TEXT"))
            cur.execute("SELECT version FROM schema_info")
            row = cur.fetchone()
            if row is None:
                cur.execute(self._sql("INSERT INTO schema_info (version) VALUES (?)"), (1,))
            elif int(row[0]) > SCHEMA_VERSION:
                raise HistoryError(
                    f"{where} has history schema version {row[0]}, this stream-monitor reads "
                    f"up to {SCHEMA_VERSION}: upgrade stream-monitor"
                )

    # -- plumbing ---------------------------------------------------------------------------

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self._postgres else statement

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            cur = self._db.cursor()
            try:
                yield cur
                self._db.commit()
            except BaseException:
                self._db.rollback()
                raise
            finally:
                cur.close()

    def _json(self, value: Any) -> Any:
        return orjson.loads(value) if isinstance(value, str | bytes) else value

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    # -- writing ----------------------------------------------------------------------------

    def write(self, page: Page) -> Written:
        """Add ``page`` in one transaction with its offsets; rows already stored are skipped."""
        sql = self._sql
        summaries = alerts = 0
        with self._transaction() as cur:
            for s in page.summaries:
                model_id, index = str(s["model_id"]), int(s["window_index"])
                revision = int(s.get("revision", 0))
                cur.execute(
                    sql(
                        "INSERT INTO window_summaries (model_id, window_index, revision, latest, "
                        "segment, model_version, window_kind, window_start, window_end, "
                        "sample_size, label_coverage, summary) "
                        "VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
                    ),
                    (
                        model_id,
                        index,
                        revision,
                        s.get("segment"),
                        s.get("model_version"),
                        str(s["window_kind"]),
                        int(s["window_start"]),
                        int(s["window_end"]),
                        int(s["sample_size"]),
                        s.get("label_coverage"),
                        orjson.dumps(s).decode(),
                    ),
                )
                if cur.rowcount != 1:
                    continue  # already stored: a replay
                summaries += 1
                cur.execute(
                    sql(
                        "SELECT MAX(revision), COUNT(*) FROM window_summaries "
                        "WHERE model_id = ? AND window_index = ?"
                    ),
                    (model_id, index),
                )
                newest, revisions = cur.fetchone()
                if revisions > 1:  # a revision of a stored window: only the newest is latest
                    cur.execute(
                        sql(
                            "UPDATE window_summaries SET latest = CASE WHEN revision = ? "
                            "THEN 1 ELSE 0 END WHERE model_id = ? AND window_index = ?"
                        ),
                        (int(newest), model_id, index),
                    )
                cur.execute(
                    sql(
                        "INSERT INTO models (model_id, windows) VALUES (?, 0) "
                        "ON CONFLICT DO NOTHING"
                    ),
                    (model_id,),
                )
                cur.execute(
                    sql(
                        "UPDATE models SET windows = windows + ?, last_window_index = ?, "
                        "last_window_end = ?, last_sample_size = ? WHERE model_id = ? AND "
                        "(last_window_index IS NULL OR last_window_index <= ?)"
                    ),
                    (
                        int(revisions == 1),
                        index,
                        int(s["window_end"]),
                        int(s["sample_size"]),
                        model_id,
                        index,
                    ),
                )
                if cur.rowcount == 0 and revisions == 1:  # an older window arriving late
                    cur.execute(
                        sql("UPDATE models SET windows = windows + 1 WHERE model_id = ?"),
                        (model_id,),
                    )
            for a in page.alerts:
                cur.execute(
                    sql(
                        "INSERT INTO alerts (alert_id, dedup_key, status, severity, model_id, "
                        "model_version, segment, kind, rule, feature, statistic, value, "
                        "threshold, window_start, window_end, starts_at, ends_at, summary, alert) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT DO NOTHING"
                    ),
                    row := _alert_row(a),
                )
                if cur.rowcount != 1:
                    continue
                alerts += 1
                cur.execute(
                    sql(
                        "INSERT INTO incidents (dedup_key, model_id, status, severity, "
                        "window_end, alert_id) VALUES (?, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (dedup_key) DO UPDATE SET status = excluded.status, "
                        "severity = excluded.severity, window_end = excluded.window_end, "
                        "alert_id = excluded.alert_id "
                        "WHERE excluded.window_end >= incidents.window_end"
                    ),
                    # dedup_key, model_id, status, severity, window_end, alert_id
                    (row[1], row[4], row[2], row[3], row[14], row[0]),
                )
            for (topic, partition), offset in page.offsets.items():
                cur.execute(
                    sql(
                        "INSERT INTO store_offsets (topic, kafka_partition, next_offset) "
                        "VALUES (?, ?, ?) ON CONFLICT (topic, kafka_partition) "
                        "DO UPDATE SET next_offset = excluded.next_offset"
                    ),
                    (topic, partition, offset),
                )
        return Written(summaries, alerts)

    def expire(self, before: int) -> Written:
        """Delete windows and alerts whose window ended before ``before`` (epoch ms)."""
        sql = self._sql
        with self._transaction() as cur:
            cur.execute(sql("DELETE FROM window_summaries WHERE window_end < ?"), (before,))
            windows = cur.rowcount
            cur.execute(sql("DELETE FROM alerts WHERE window_end < ?"), (before,))
            alerts = cur.rowcount
            cur.execute(sql("DELETE FROM incidents WHERE window_end < ?"), (before,))
            if windows:
                cur.execute(
                    "UPDATE models SET windows = (SELECT COUNT(*) FROM window_summaries w "
                    "WHERE w.model_id = models.model_id AND w.latest = 1)"
                )
                cur.execute(
                    "DELETE FROM models WHERE windows = 0 AND NOT EXISTS "
                    "(SELECT 1 FROM incidents i WHERE i.model_id = models.model_id)"
                )
        return Written(windows, alerts)

    # -- reading ----------------------------------------------------------------------------

    def offsets(self, topics: Iterable[str] | None = None) -> dict[tuple[str, int], int]:
        """The next offset to read of each stored topic partition."""
        with self._transaction() as cur:
            cur.execute("SELECT topic, kafka_partition, next_offset FROM store_offsets")
            rows = cur.fetchall()
        wanted = None if topics is None else set(topics)
        return {(str(t), int(p)): int(o) for t, p, o in rows if wanted is None or t in wanted}

    def models(
        self, incidents: dict[str, list[dict[str, Any]]] | None = None
    ) -> list[dict[str, Any]]:
        """Every stored model with its status, firing incidents and last window.

        ``incidents`` is :meth:`incidents_by_model` when the caller has read it already.
        """
        with self._transaction() as cur:
            cur.execute(
                "SELECT model_id, windows, last_window_index, last_window_end, "
                "last_sample_size FROM models ORDER BY model_id"
            )
            rows = cur.fetchall()
        by_model = self.incidents_by_model() if incidents is None else incidents
        out = []
        for model_id, windows, index, end, size in rows:
            status, firing = incident_status(by_model.get(model_id, ()))
            out.append(
                {
                    "model_id": model_id,
                    "status": status,
                    "firing": firing,
                    "windows": int(windows),
                    "last_window": None
                    if index is None
                    else {"window_index": index, "window_end": end, "sample_size": size},
                }
            )
        return out

    def incidents(self, model_id: str | None = None) -> list[dict[str, Any]]:
        """The latest alert of each incident (of ``model_id``, or of every model).

        Rows of model_id, dedup_key, status, severity, window_end and alert_id.
        """
        where, params = ("", ()) if model_id is None else (" WHERE model_id = ?", (model_id,))
        with self._transaction() as cur:
            cur.execute(
                self._sql(
                    "SELECT model_id, dedup_key, status, severity, window_end, alert_id "  # noqa: S608
                    f"FROM incidents{where}"
                ),
                params,
            )
            rows = cur.fetchall()
        keys = ("model_id", "dedup_key", "status", "severity", "window_end", "alert_id")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def incidents_by_model(self) -> dict[str, list[dict[str, Any]]]:
        """:meth:`incidents` of every model, grouped by model id (one query)."""
        grouped: dict[str, list[dict[str, Any]]] = {}
        for incident in self.incidents():
            grouped.setdefault(incident["model_id"], []).append(incident)
        return grouped

    def windows(
        self,
        model_id: str,
        since: int | None = None,
        until: int | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` windows (latest revisions) ending in [since, until), oldest first.

        ``since`` and ``until`` are epoch ms.
        """
        newest = self._newest(
            "summary FROM window_summaries",
            " AND latest = 1",
            "window_index DESC",
            model_id,
            since=since,
            until=until,
            limit=limit,
        )
        return newest[::-1]

    def revisions(self, model_id: str, window_index: int) -> list[dict[str, Any]]:
        """Every stored revision of one window, oldest first."""
        with self._transaction() as cur:
            cur.execute(
                self._sql(
                    "SELECT summary FROM window_summaries WHERE model_id = ? AND "
                    "window_index = ? ORDER BY revision"
                ),
                (model_id, window_index),
            )
            rows = cur.fetchall()
        return [self._json(row[0]) for row in rows]

    def alerts(
        self,
        model_id: str,
        since: int | None = None,
        until: int | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` alerts of windows ending in [since, until), newest first."""
        return self._newest(
            "alert FROM alerts", "", "alert_id", model_id, since=since, until=until, limit=limit
        )

    def _newest(
        self,
        source: str,
        condition: str,
        tie: str,
        model_id: str,
        *,
        since: int | None,
        until: int | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """The JSON column of ``source``'s newest ``limit`` rows of one model ending in range.

        ``source``, ``condition`` and ``tie`` are fixed SQL from this class; the model and the
        range only ever go in as placeholders.
        """
        where, params = _range("window_end", since, until)
        with self._transaction() as cur:
            cur.execute(
                self._sql(
                    f"SELECT {source} WHERE model_id = ?{condition}{where} "
                    f"ORDER BY window_end DESC, {tie} LIMIT ?"
                ),
                (model_id, *params, limit),
            )
            rows = cur.fetchall()
        return [self._json(row[0]) for row in rows]

    def counts(self) -> dict[str, int]:
        """Rows per table (for the command's report and the tests)."""
        out = {}
        with self._transaction() as cur:
            for table in ("window_summaries", "alerts", "models", "incidents"):
                cur.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 (fixed names)
                out[table] = int(cur.fetchone()[0])
        return out


def _alert_row(a: dict[str, Any]) -> tuple[Any, ...]:
    """The ``alerts`` columns of one alert, in table order."""
    return (
        str(a["alert_id"]),
        str(a["dedup_key"]),
        str(a["status"]),
        str(a["severity"]),
        str(a["model_id"]),
        a.get("model_version"),
        a.get("segment"),
        str(a["kind"]),
        str(a["rule"]),
        a.get("feature"),
        str(a["statistic"]),
        a.get("value"),
        a.get("threshold"),
        int(a["window_start"]),
        int(a["window_end"]),
        int(a["starts_at"]),
        a.get("ends_at"),
        str(a["summary"]),
        orjson.dumps(a).decode(),
    )


def _range(column: str, since: int | None, until: int | None) -> tuple[str, Sequence[int]]:
    where, params = "", []
    if since is not None:
        where += f" AND {column} >= ?"
        params.append(since)
    if until is not None:
        where += f" AND {column} < ?"
        params.append(until)
    return where, params


def _sqlite_path(url: str) -> str:
    rest = url.removeprefix("sqlite://")
    if not rest.startswith("/") or rest == "/":
        raise HistoryError(
            f"history database {url!r}: write sqlite:///relative/path.db or "
            "sqlite:////absolute/path.db"
        )
    return rest[1:]


def open_history(url: str, *, create: bool = True) -> SqlHistory:
    """Open (and create the tables of) the database at ``url``: sqlite:/// or postgresql://."""
    shown = redacted(url)
    if url.startswith("sqlite:"):
        path = _sqlite_path(url)
        if path != ":memory:":
            target = Path(path)
            if not create and not target.exists():
                raise HistoryError(
                    f"history database {shown} does not exist: run `stream-monitor store` first"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(path, timeout=10.0, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")  # readers (the dashboard) never block the writer
            db.execute("PRAGMA synchronous=NORMAL")
            return SqlHistory(db, postgres=False, where=shown)
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot open history database {shown}: {exc}") from None
    if url.startswith(("postgresql:", "postgres:")):
        try:
            import psycopg  # noqa: PLC0415 - the optional "postgres" extra
            from psycopg.types.json import set_json_loads  # noqa: PLC0415
        except ImportError:
            raise HistoryError(
                "a postgresql:// history needs psycopg: pip install 'stream-monitor[postgres]'"
            ) from None
        try:
            pg = psycopg.connect(url, connect_timeout=10)
        except psycopg.Error as exc:
            message = redacted(str(exc)).strip().splitlines()[0] if str(exc) else type(exc)
            raise HistoryError(
                f"cannot connect to history database {shown}: {message}; check the URL and "
                "that the server accepts connections"
            ) from None
        set_json_loads(orjson.loads, pg)
        try:
            return SqlHistory(pg, postgres=True, where=shown)
        except psycopg.Error as exc:
            pg.close()
            raise HistoryError(f"cannot create the tables in {shown}: {exc}") from None
    raise HistoryError(
        f"history database {shown}: unknown scheme; use sqlite:///PATH or postgresql://..."
    )
