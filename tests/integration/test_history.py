"""The history store on SQLite and on a real PostgreSQL server, then `stream-monitor store` on the
real broker: idempotent writes, revisions, time ranges, retention, restarts and bad records.

PostgreSQL comes from ``$STREAM_MONITOR_TEST_POSTGRES`` (``.ci/postgres.sh`` starts one from
Debian's package and prints its URL); each test gets its own schema. Without it the PostgreSQL
cases skip, or fail with ``STREAM_MONITOR_REQUIRE_POSTGRES=1`` (CI).
"""

from __future__ import annotations

import asyncio
import copy
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from stream_monitor.cli import app
from stream_monitor.config import load_settings
from stream_monitor.history import Page, SqlHistory, open_history
from stream_monitor.history.sql import HistoryError, redacted
from stream_monitor.history.writer import HistoryWriter, StoreStats
from stream_monitor.offline.backtest import run_backtest

from ..unit.test_offline_commands import write_events
from .runtime_helpers import produce

runner = CliRunner()


def _postgres_url() -> str:
    url = os.environ.get("STREAM_MONITOR_TEST_POSTGRES")
    if not url:
        message = (
            "a PostgreSQL server is needed: export STREAM_MONITOR_TEST_POSTGRES="
            '"$(.ci/postgres.sh)" (starts one from the postgresql package on 127.0.0.1)'
        )
        if os.environ.get("STREAM_MONITOR_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty history database, of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'history.db'}"
        return
    import psycopg

    base = _postgres_url()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    yield f"{base}?options=-csearch_path%3D{schema}"
    with psycopg.connect(base, autocommit=True) as db:
        db.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def history(database: str) -> Iterator[SqlHistory]:
    store = open_history(database)
    yield store
    store.close()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Real window summaries and alerts: a backtest of a stream that shifts half-way."""
    path = write_events(tmp_path_factory.mktemp("events") / "e.jsonl", 6_000, shift_at=3_000)
    settings = load_settings(
        None,
        {
            "monitoring": {
                "default": {
                    "warmup_events": 500,
                    "window": {"kind": "count", "events": 250},
                    "performance": {"reference_labels": 50, "min_labels": 20},
                }
            }
        },
    )
    summaries: list[dict[str, Any]] = []
    alerts: list[bytes] = []
    run_backtest(settings, path, alerts.append, lambda s: summaries.append(orjson.loads(s)))
    assert len(summaries) >= 20
    assert alerts
    return summaries, alerts


@pytest.fixture
def filled(
    history: SqlHistory, outputs: tuple[list[dict[str, Any]], list[bytes]]
) -> tuple[SqlHistory, list[dict[str, Any]], list[dict[str, Any]]]:
    """The history with every summary and alert of ``outputs`` written."""
    summaries, alerts = outputs[0], _alerts(outputs)
    history.write(Page(summaries, alerts))
    return history, summaries, alerts


def _alerts(outputs: tuple[list[dict[str, Any]], list[bytes]]) -> list[dict[str, Any]]:
    return [orjson.loads(a) for a in outputs[1]]


def test_a_page_is_stored_once_with_its_offsets(
    history: SqlHistory, outputs: tuple[list[dict[str, Any]], list[bytes]]
) -> None:
    summaries, _ = outputs
    alerts = _alerts(outputs)
    page = Page(summaries, alerts, {("metrics", 0): 41, ("alerts", 1): 7})
    written = history.write(page)
    assert (written.summaries, written.alerts) == (len(summaries), len(alerts))
    again = history.write(Page(summaries, alerts, {("metrics", 0): 90}))
    assert (again.summaries, again.alerts) == (0, 0)  # a replay inserts nothing
    assert history.offsets() == {("metrics", 0): 90, ("alerts", 1): 7}
    assert history.offsets(["alerts"]) == {("alerts", 1): 7}
    counts = history.counts()
    assert counts["window_summaries"] == len(summaries)
    assert counts["alerts"] == len({a["alert_id"] for a in alerts})

    [model] = history.models()
    last = summaries[-1]
    assert model["model_id"] == "fraud"
    assert model["windows"] == len(summaries)
    assert model["last_window"]["window_index"] == last["window_index"]
    incidents: dict[str, dict[str, Any]] = {}
    for a in sorted(alerts, key=lambda a: a["window_end"]):
        incidents[a["dedup_key"]] = a
    firing = [a for a in incidents.values() if a["status"] == "firing"]
    assert model["firing"] == len(firing)
    expected = (
        "critical"
        if any(a["severity"] == "critical" for a in firing)
        else ("warning" if firing else "ok")
    )
    assert model["status"] == expected
    assert {i["dedup_key"]: i["status"] for i in history.incidents("fraud")} == {
        k: a["status"] for k, a in incidents.items()
    }

    assert history.windows("fraud", limit=10_000) == summaries  # the whole JSON comes back
    stored = history.alerts("fraud", limit=10_000)
    assert [a["window_end"] for a in stored] == sorted(
        (a["window_end"] for a in alerts), reverse=True
    )


def test_time_ranges_and_limits_pick_the_newest_windows_inside(
    filled: tuple[SqlHistory, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    history, summaries, _ = filled
    since, until = summaries[5]["window_end"], summaries[15]["window_end"]
    inside = [s for s in summaries if since <= s["window_end"] < until]
    assert history.windows("fraud", since, until) == inside
    assert history.windows("fraud", since, until, limit=3) == inside[-3:]
    assert history.windows("fraud", until=since) == [
        s for s in summaries if s["window_end"] < since
    ]
    assert all(since <= a["window_end"] for a in history.alerts("fraud", since=since))
    assert history.windows("nobody") == []
    assert history.alerts("nobody") == []


def test_a_revision_replaces_its_window_and_every_revision_is_kept(
    history: SqlHistory, outputs: tuple[list[dict[str, Any]], list[bytes]]
) -> None:
    summaries = outputs[0][:4]
    history.write(Page(summaries))
    revised = copy.deepcopy(summaries[1])
    revised["revision"] = 1
    revised["performance"] = {"accuracy": 0.25}
    assert history.write(Page([revised])).summaries == 1
    windows = history.windows("fraud")
    assert len(windows) == 4
    assert windows[1] == revised
    assert [r["revision"] for r in history.revisions("fraud", revised["window_index"])] == [0, 1]
    assert history.models()[0]["windows"] == 4  # a revision is not a new window
    # An older window first seen after newer ones still counts, without moving last_window.
    late = copy.deepcopy(summaries[0])
    late["window_index"] = 1_000_000
    late["window_end"] = summaries[0]["window_end"] - 1
    history.write(Page([late]))
    early = copy.deepcopy(summaries[0])
    early["window_index"] = 999_999
    history.write(Page([early]))
    [model] = history.models()
    assert model["windows"] == 6
    assert model["last_window"]["window_index"] == 1_000_000


def test_retention_deletes_old_windows_and_alerts(
    filled: tuple[SqlHistory, list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    history, summaries, alerts = filled
    cut = summaries[10]["window_end"]
    gone = history.expire(cut)
    assert gone.summaries == sum(s["window_end"] < cut for s in summaries)
    assert gone.alerts == sum(a["window_end"] < cut for a in alerts)
    assert all(s["window_end"] >= cut for s in history.windows("fraud", limit=10_000))
    assert history.models()[0]["windows"] == len(summaries) - gone.summaries
    history.expire(summaries[-1]["window_end"] + 1)
    assert history.models() == []


def test_the_database_url_is_checked_and_its_password_never_shown(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="sqlite:///relative"):
        open_history("sqlite://nowhere.db")
    with pytest.raises(HistoryError, match="does not exist: run `stream-monitor store`"):
        open_history(f"sqlite:///{tmp_path / 'absent.db'}", create=False)
    with pytest.raises(HistoryError, match="unknown scheme"):
        open_history("mysql://u:hunter2@h/db")
    assert redacted("postgresql://u:hunter2@h:5/db") == "postgresql://u:***@h:5/db"
    with pytest.raises(HistoryError) as refused:
        open_history("postgresql://u:hunter2@127.0.0.1:1/db")
    assert "hunter2" not in str(refused.value)
    assert "check the URL" in str(refused.value)
    db = tmp_path / "newer.db"
    open_history(f"sqlite:///{db}").close()
    import sqlite3

    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE schema_info SET version = 99")
    with pytest.raises(HistoryError, match=r"schema version 99.*upgrade"):
        open_history(f"sqlite:///{db}")


async def test_store_command_is_idempotent_across_restarts_and_replays(
    kafka_bootstrap: str,
    database: str,
    outputs: tuple[list[dict[str, Any]], list[bytes]],
    new_topic: Any,
) -> None:
    summaries, alerts = outputs
    metrics, alerts_topic = await new_topic("metrics", partitions=2), await new_topic("alerts")
    half = len(summaries) // 2
    as_records = [(b"fraud", orjson.dumps(s)) for s in summaries]
    env = {
        "STREAM_MONITOR_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "STREAM_MONITOR_TOPICS__METRICS": metrics,
        "STREAM_MONITOR_TOPICS__ALERTS": alerts_topic,
        "STREAM_MONITOR_HISTORY__DATABASE": database,
        "STREAM_MONITOR_LOGGING__LEVEL": "WARNING",
    }

    async def store_in_process() -> StoreStats:
        settings = load_settings(
            None,
            {
                "kafka": {"bootstrap_servers": kafka_bootstrap},
                "topics": {"metrics": metrics, "alerts": alerts_topic},
            },
        )
        history = open_history(database)
        try:
            return await HistoryWriter(settings, history).run(asyncio.Event(), once=True)
        finally:
            history.close()

    async def store_command() -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "stream_monitor",
            "store",
            "--once",
            env={**os.environ, **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 120)
        output = out.decode()
        assert process.returncode == 0, output
        assert "stream-monitor-test" not in output  # the password is never printed
        return output

    await produce(kafka_bootstrap, metrics, as_records[:half])
    await produce(kafka_bootstrap, alerts_topic, [(b"fraud", a) for a in alerts])
    first = await store_in_process()
    assert (first.summaries, first.alerts, first.replayed) == (half, len(alerts), 0)
    # The rest, a replay of everything already stored (a worker restarted from older offsets),
    # and two records the store cannot use.
    await produce(
        kafka_bootstrap,
        metrics,
        [*as_records[half:], *as_records, (b"x", b"{not json"), (b"x", b'{"model_id": 3}')],
    )
    second = await store_command()
    assert f"summaries {len(summaries) - half}," in second
    assert f"replayed {len(summaries)}," in second
    assert "unreadable 2" in second
    assert "alerts 0," in second  # restarted from its stored offsets: nothing read twice
    history = open_history(database, create=False)
    try:
        assert history.counts()["window_summaries"] == len(summaries)
        assert history.counts()["alerts"] == len({orjson.loads(a)["alert_id"] for a in alerts})
        assert history.windows("fraud", limit=10_000) == summaries
    finally:
        history.close()


def test_store_command_requires_a_database() -> None:
    result = runner.invoke(app, ["store", "--once"], env={"STREAM_MONITOR_HISTORY__DATABASE": None})
    assert result.exit_code == 2
    assert "history.database" in result.output
    assert "--database" in result.output


async def test_the_dashboard_reads_history_from_the_store_and_only_new_records_from_topics(
    kafka_bootstrap: str,
    database: str,
    outputs: tuple[list[dict[str, Any]], list[bytes]],
    new_topic: Any,
) -> None:
    import httpx

    from stream_monitor.dashboard import serve

    summaries, alerts = outputs
    metrics, alerts_topic = await new_topic("metrics"), await new_topic("alerts")
    settings = load_settings(
        None,
        {
            "kafka": {"bootstrap_servers": kafka_bootstrap},
            "topics": {"metrics": metrics, "alerts": alerts_topic},
            "history": {"database": database},
            "http": {"dashboard_port": 0, "dashboard_windows": 10_000},
        },
    )
    stored = len(summaries) - 5
    await produce(kafka_bootstrap, metrics, [(b"f", orjson.dumps(s)) for s in summaries[:stored]])
    await produce(kafka_bootstrap, alerts_topic, [(b"f", a) for a in alerts])
    history = open_history(database)
    try:
        await HistoryWriter(settings, history).run(asyncio.Event(), once=True)
    finally:
        history.close()
    # Newer windows the store has not stored yet, and a revision of a stored one.
    revised = copy.deepcopy(summaries[2])
    revised["revision"] = 1
    revised["performance"] = {"accuracy": 0.125}
    live = [*summaries[stored:], revised]
    await produce(kafka_bootstrap, metrics, [(b"f", orjson.dumps(s)) for s in live])

    runner_, dashboard, port = await serve(settings, "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(200):
                if len(dashboard.store.model("fraud") or {"windows": ()}["windows"]) == len(live):
                    break
                await asyncio.sleep(0.1)
            # The topics were read only from the store's offsets on.
            assert len(dashboard.store.model("fraud")["windows"]) == len(live)  # type: ignore[index]
            assert dashboard.store.model("fraud")["alerts"] == []  # type: ignore[index]
            detail = (await client.get("/api/models/fraud")).json()
            assert [w["window_index"] for w in detail["windows"]] == [
                s["window_index"] for s in summaries
            ]
            assert detail["windows"][2] == revised
            assert len(detail["alerts"]) == len({orjson.loads(a)["alert_id"] for a in alerts})
            [model] = (await client.get("/api/models")).json()
            assert model["windows"] == len(summaries)
            assert model["last_window"]["window_index"] == summaries[-1]["window_index"]
            assert model["status"] == detail["status"]
            since = summaries[-8]["window_end"]
            ranged = (await client.get("/api/models/fraud", params={"since": since})).json()
            assert [w["window_end"] for w in ranged["windows"]] == [
                s["window_end"] for s in summaries if s["window_end"] >= since
            ]
            assert all(a["window_end"] >= since for a in ranged["alerts"])
            bad = await client.get("/api/models/fraud", params={"until": "yesterday"})
            assert bad.status_code == 400
            assert "until='yesterday'" in bad.json()["error"]
            assert (await client.get("/api/models/nobody")).status_code == 404
    finally:
        await runner_.cleanup()


def test_the_database_setting_names_its_scheme_without_showing_the_url() -> None:
    from stream_monitor.errors import ConfigError

    with pytest.raises(ConfigError) as bad:
        load_settings(None, {"history": {"database": "mysql://u:hunter2@h/db"}})
    assert "history.database" in str(bad.value)
    assert "'mysql'" in str(bad.value)
    assert "hunter2" not in str(bad.value)
    with pytest.raises(ConfigError, match="retention_days"):
        load_settings(None, {"history": {"retention_days": -1}})
