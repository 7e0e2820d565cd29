"""The history store's tables, portable between SQLite and PostgreSQL: window summaries (every
revision), alerts, the derived ``models`` and ``incidents`` tables, and the consumer's offsets."""

from __future__ import annotations

__all__ = ["SCHEMA", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1

# {json} is TEXT in SQLite and JSONB in PostgreSQL (queryable with ->, ->> from Grafana).
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS window_summaries (
        model_id TEXT NOT NULL,
        window_index BIGINT NOT NULL,
        revision INTEGER NOT NULL,
        latest SMALLINT NOT NULL,
        segment TEXT,
        model_version TEXT,
        window_kind TEXT NOT NULL,
        window_start BIGINT NOT NULL,
        window_end BIGINT NOT NULL,
        sample_size BIGINT NOT NULL,
        label_coverage DOUBLE PRECISION,
        summary {json} NOT NULL,
        PRIMARY KEY (model_id, window_index, revision))""",
    "CREATE INDEX IF NOT EXISTS window_summaries_latest_by_time "
    "ON window_summaries (model_id, latest, window_end)",
    "CREATE INDEX IF NOT EXISTS window_summaries_by_end ON window_summaries (window_end)",
    """CREATE TABLE IF NOT EXISTS alerts (
        alert_id TEXT PRIMARY KEY,
        dedup_key TEXT NOT NULL,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        model_id TEXT NOT NULL,
        model_version TEXT,
        segment TEXT,
        kind TEXT NOT NULL,
        rule TEXT NOT NULL,
        feature TEXT,
        statistic TEXT NOT NULL,
        value DOUBLE PRECISION,
        threshold DOUBLE PRECISION,
        window_start BIGINT NOT NULL,
        window_end BIGINT NOT NULL,
        starts_at BIGINT NOT NULL,
        ends_at BIGINT,
        summary TEXT NOT NULL,
        alert {json} NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS alerts_by_model_time ON alerts (model_id, window_end)",
    "CREATE INDEX IF NOT EXISTS alerts_by_incident ON alerts (dedup_key, window_end)",
    """CREATE TABLE IF NOT EXISTS models (
        model_id TEXT PRIMARY KEY,
        windows BIGINT NOT NULL,
        last_window_index BIGINT,
        last_window_end BIGINT,
        last_sample_size BIGINT)""",
    """CREATE TABLE IF NOT EXISTS incidents (
        dedup_key TEXT PRIMARY KEY,
        model_id TEXT NOT NULL,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        window_end BIGINT NOT NULL,
        alert_id TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS incidents_by_model ON incidents (model_id)",
    """CREATE TABLE IF NOT EXISTS store_offsets (
        topic TEXT NOT NULL,
        kafka_partition INTEGER NOT NULL,
        next_offset BIGINT NOT NULL,
        PRIMARY KEY (topic, kafka_partition))""",
    "CREATE TABLE IF NOT EXISTS schema_info (version INTEGER NOT NULL)",
)
