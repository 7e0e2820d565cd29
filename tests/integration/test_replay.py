"""`stream-monitor record` and `replay` on the real broker: what is captured replays identically."""

from __future__ import annotations

import asyncio
import gzip
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
from typer.testing import CliRunner

from stream_monitor.cli import app

from .conftest import TopicFactory
from .runtime_helpers import produce, read_all

runner = CliRunner()


def events(count: int, prefix: str = "e") -> list[tuple[bytes, bytes]]:
    return [
        (
            f"m{i % 3}".encode(),
            orjson.dumps(
                {"event_id": f"{prefix}{i}", "model_id": f"m{i % 3}", "timestamp": 1_000 + i}
            ),
        )
        for i in range(count)
    ]


async def test_record_then_replay_preserves_values_keys_headers_and_order(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    source = await new_topic("rec-src", partitions=3)
    target = await new_topic("rec-dst", partitions=3)
    await produce(kafka_bootstrap, source, events(300), headers=[("trace", b"t-1")])
    out = tmp_path / "capture.jsonl.gz"
    recorded = await asyncio.to_thread(
        runner.invoke,
        app,
        [
            "record",
            "--topic",
            source,
            "--out",
            str(out),
            "--from-beginning",
            "--limit",
            "300",
            "--bootstrap-servers",
            kafka_bootstrap,
        ],
    )
    assert recorded.exit_code == 0, recorded.output
    assert f"recorded 300 records of {source}" in recorded.output
    with gzip.open(out, "rt", encoding="utf-8") as handle:
        lines = [orjson.loads(line) for line in handle]
    assert len(lines) == 300
    assert {line["topic"] for line in lines} == {source}
    assert all(line["headers"] == [{"key": "trace", "value": "t-1"}] for line in lines)
    assert all(isinstance(line["offset"], int) and line["timestamp"] > 0 for line in lines)
    replayed = await asyncio.to_thread(
        runner.invoke,
        app,
        [
            "replay",
            str(out),
            "--topic",
            target,
            "--rate",
            "1000",
            "--json",
            "--bootstrap-servers",
            kafka_bootstrap,
        ],
    )
    assert replayed.exit_code == 0, replayed.output
    summary = orjson.loads(replayed.stdout.strip().splitlines()[-1])
    assert summary["sent"] == 300
    assert summary["failed"] == 0
    assert summary["latency_ms_p50"] is not None
    assert summary["latency_ms_p99"] >= summary["latency_ms_p50"]
    assert 250 <= summary["rate"] <= 1000  # paced: 300 records at 1,000/s take at least 0.3 s
    original = await read_all(kafka_bootstrap, source)
    copy = await read_all(kafka_bootstrap, target)
    by_key = lambda rs: {  # noqa: E731
        k: [(r.value, r.headers) for r in rs if r.key == k] for k in (b"m0", b"m1", b"m2")
    }
    assert by_key(copy) == by_key(original)  # per key: same values, same order, same headers


async def test_replay_rekeys_by_model_stamps_now_loops_and_skips_bad_lines(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    target = await new_topic("rep-dst", partitions=2)
    path = tmp_path / "events.jsonl"
    good = [value.decode() for _, value in events(4)]
    path.write_text("\n".join([good[0], "{broken", good[1], good[2], good[3]]) + "\n")
    before = time.time() * 1000
    result = await asyncio.to_thread(
        runner.invoke,
        app,
        [
            "replay",
            str(path),
            "--topic",
            target,
            "--rekey",
            "--now",
            "--loop",
            "--limit",
            "10",
            "--json",
            "--bootstrap-servers",
            kafka_bootstrap,
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"skipped {path}:2: JSONDecodeError" in result.output
    summary = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert summary["sent"] == 10
    assert summary["bad_lines"] == 3  # line 2, once per pass (three passes for 10 records)
    records = await read_all(kafka_bootstrap, target)
    assert len(records) == 10
    for record in records:
        event = orjson.loads(record.value)
        assert record.key == event["model_id"].encode()
        assert event["timestamp"] >= before
    fatal = await asyncio.to_thread(
        runner.invoke,
        app,
        [
            "replay",
            str(path),
            "--topic",
            target,
            "--on-error",
            "fail",
            "--bootstrap-servers",
            kafka_bootstrap,
        ],
    )
    assert fatal.exit_code == 1
    assert f"{path}:2" in fatal.output


async def test_record_stops_on_ctrl_c_with_everything_flushed(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    topic = await new_topic("rec-live", partitions=2)
    await produce(kafka_bootstrap, topic, events(5))  # before the recording: not captured
    out = tmp_path / "live.jsonl"
    process = subprocess.Popen(  # noqa: ASYNC220 - a real process to interrupt
        [
            sys.executable,
            "-m",
            "stream_monitor",
            "record",
            "--topic",
            topic,
            "--out",
            str(out),
            "--bootstrap-servers",
            kafka_bootstrap,
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    await asyncio.sleep(4)  # recording from the end of the topic as of now
    await produce(kafka_bootstrap, topic, events(50, prefix="new-e"))
    await asyncio.sleep(2)
    process.send_signal(signal.SIGINT)
    _, err = await asyncio.to_thread(process.communicate, timeout=20)
    assert process.returncode == 0, err
    assert "recorded 50 records" in err
    lines = [orjson.loads(line) for line in out.read_text().splitlines()]
    ids = sorted(orjson.loads(line["value"])["event_id"] for line in lines)
    assert ids == sorted(f"new-e{i}" for i in range(50))  # none from before, none lost
