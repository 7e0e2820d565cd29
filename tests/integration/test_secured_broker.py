"""The commands against a secured Apache Kafka: TLS, SASL/SCRAM-SHA-512 and ACLs.

`stream-monitor broker start --security sasl_ssl` starts the broker (certificates made for the
test, random passwords) and grants User:monitor the topics, group and transactional ids of one
configuration. Through it: simulate, run, tail, record, replay, the dashboard and the Faust
adapter work; a wrong password, an unknown CA and a missing ACL each exit 2 with a message that
names the setting and the topic or group; no output carries a password.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stream_monitor.config import load_settings
from stream_monitor.devtools.broker.process import free_port
from stream_monitor.runtime.topics import ensure_topics

from .runtime_helpers import SMALL_WINDOWS, read_all

GROUP = "secure-monitor"
FAUST = f"{GROUP}-faust"  # the Faust adapter's topics: under the group's granted prefix


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "stream_monitor", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


class Secured:
    """A secured broker and the monitor's configuration for it."""

    def __init__(self, folder: Path, client: Path) -> None:
        self.client = yaml.safe_load(client.read_text("utf-8"))["kafka"]
        self.password = str(self.client["sasl_password"])
        self.config = folder / "monitor.yaml"
        self.outputs: list[str] = []  # every command's output, checked for the password
        self.config.write_text(yaml.safe_dump(self.data()), "utf-8")

    def data(self, **topics: str) -> dict[str, Any]:
        return {
            "kafka": {**self.client, "group_id": GROUP},
            "topics": {"partitions": 2, **topics},
            "processing": {"checkpoint_interval": 1.0},
            "http": {"port": 0},
            "logging": {"level": "WARNING"},
            "monitoring": SMALL_WINDOWS,
            "sinks": [{"type": "kafka"}],
        }

    def cli(self, *args: str, config: Path | None = None, timeout: float = 180) -> tuple[int, str]:
        code, output = _cli(*args, "--config", str(config or self.config), timeout=timeout)
        self.outputs.append(output)
        return code, output

    def popen(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> Any:
        with log.open("wb") as out:
            return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)

    async def read(self, topic: str, idle: float = 3.0) -> list[Any]:
        return await read_all(self.client["bootstrap_servers"], topic, idle, **self.kwargs())

    def kwargs(self) -> dict[str, Any]:
        from stream_monitor.kafka.connection import client_kwargs

        settings = load_settings(self.config)
        return {"client": client_kwargs(settings.kafka)}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    missing = [tool for tool in ("java", "mvn", "openssl") if shutil.which(tool) is None]
    if missing:
        reason = f"{', '.join(missing)} not on PATH: the secured broker needs Java, Maven, openssl"
        if os.environ.get("STREAM_MONITOR_REQUIRE_BROKER"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("secured")
    grants = folder / "grants.yaml"
    grants.write_text(yaml.safe_dump({"kafka": {"group_id": GROUP}}), "utf-8")
    port = free_port()
    code, output = _cli(
        "broker", "start", "--kind", "kafka", "--security", "sasl_ssl",
        "--port", str(port), "--config", str(grants),
    )  # fmt: skip
    assert code == 0, output
    client = Path(re.findall(r"readable by you only\): (\S+client\.yaml)", output)[0])
    assert oct(client.stat().st_mode & 0o777) == "0o600"
    setup = Secured(folder, client)
    setup.outputs.append(output)
    try:
        yield setup
    finally:
        _cli("broker", "stop", "--port", str(port))
    for text in setup.outputs:
        assert setup.password not in text


def _wait(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def test_the_commands_and_the_faust_adapter_work_through_tls_sasl_and_acls(
    secured: Secured, tmp_path: Path
) -> None:
    code, output = secured.cli(
        "simulate", "--models", "1", "--events", "4000", "--drift-at", "2000", "--seed", "3"
    )
    assert code == 0, output
    # run: a worker of the granted group monitors the stream and alerts
    worker = secured.popen(
        [sys.executable, "-m", "stream_monitor", "run", "--config", str(secured.config)],
        tmp_path / "worker.log",
    )
    try:
        alerts: list[Any] = []

        def alerted() -> bool:
            alerts[:] = asyncio.run(secured.read("alerts", idle=1.0))
            return bool(alerts) or worker.poll() is not None

        _wait(alerted, 120, "the worker's first alert")
        assert worker.poll() is None, (tmp_path / "worker.log").read_text()
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0, (tmp_path / "worker.log").read_text()
    secured.outputs.append((tmp_path / "worker.log").read_text())
    first = json.loads(alerts[0].value)

    # tail: the same alert
    code, output = secured.cli("tail", "--from-beginning", "--json", "--limit", "1")
    assert code == 0, output
    assert json.loads(output.splitlines()[-1])["alert_id"] in {
        json.loads(a.value)["alert_id"] for a in alerts
    }

    # record then replay: the predictions, into the Faust adapter's input topic
    recorded = tmp_path / "predictions.jsonl"
    code, output = secured.cli(
        "record", "--topic", "predictions", "--from-beginning", "--limit", "4000",
        "--out", str(recorded),
    )  # fmt: skip
    assert code == 0, output
    assert len(recorded.read_text().splitlines()) == 4000
    faust_data = secured.data(
        predictions=f"{FAUST}-predictions",
        labels=f"{FAUST}-labels",
        alerts=f"{FAUST}-alerts",
        metrics=f"{FAUST}-metrics",
        dead_letters=f"{FAUST}-dead-letters",
        state=f"{FAUST}-state",
    )
    faust_config = tmp_path / "faust.yaml"
    faust_config.write_text(yaml.safe_dump(faust_data), "utf-8")
    nowhere = f"{GROUP}-nowhere"  # granted, but not created: said at once, not retried
    code, output = secured.cli("replay", str(recorded), "--topic", nowhere, config=faust_config)
    assert code == 2, output
    assert f"- --topic: {nowhere} does not exist" in output
    asyncio.run(ensure_topics(load_settings(faust_config)))
    code, output = secured.cli(
        "replay", str(recorded), "--topic", f"{FAUST}-predictions", "--json",
        config=faust_config,
    )  # fmt: skip
    assert code == 0, output
    assert json.loads(output.strip().splitlines()[-1])["sent"] == 4000

    # the Faust adapter: consumes what was replayed, publishes window summaries
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_MONITOR_")}
    env["STREAM_MONITOR_CONFIG"] = str(faust_config)
    faust = secured.popen(
        [sys.executable, "-m", "faust", "-A", "stream_monitor.faust.app", "worker"],
        tmp_path / "faust.log",
        env=env,
    )
    try:
        summaries: list[Any] = []

        def summarized() -> bool:
            summaries[:] = asyncio.run(secured.read(f"{FAUST}-metrics", idle=1.0))
            return len(summaries) >= 4000 // 300 or faust.poll() is not None

        _wait(summarized, 150, "the Faust adapter's window summaries")
        assert faust.poll() is None, (tmp_path / "faust.log").read_text()[-3000:]
    finally:
        faust.send_signal(signal.SIGTERM)
        faust.wait(60)
    secured.outputs.append((tmp_path / "faust.log").read_text())

    # the dashboard: reads the alerts and metrics topics through the secured listener
    dashboard = secured.popen(
        [
            sys.executable, "-m", "stream_monitor", "dashboard",
            "--config", str(secured.config), "--port", "0",
        ],
        tmp_path / "dashboard.log",
    )  # fmt: skip
    try:
        url: list[str] = []

        def serving() -> bool:
            log = (tmp_path / "dashboard.log").read_text()
            found = re.findall(r"dashboard on (http://\S+/)", log)
            url[:] = found
            return bool(found) or dashboard.poll() is not None

        _wait(serving, 60, "the dashboard")
        assert url, (tmp_path / "dashboard.log").read_text()
        models: list[Any] = []

        def listed() -> bool:
            with urllib.request.urlopen(url[0] + "api/models", timeout=5) as answer:  # noqa: S310
                models[:] = json.loads(answer.read())
            return any(m["status"] != "ok" for m in models)  # an alert read and shown

        _wait(listed, 60, "the dashboard's models")
        assert first["model_id"] in {m["model_id"] for m in models}
    finally:
        dashboard.send_signal(signal.SIGTERM)
        dashboard.wait(30)
    secured.outputs.append((tmp_path / "dashboard.log").read_text())


@pytest.mark.parametrize(
    ("sets", "setting", "named"),
    [
        (["kafka.sasl_password=not-the-password"], "kafka.sasl_password", "'monitor'"),
        (["kafka.ssl_cafile={other_ca}"], "kafka.ssl_cafile", "certificate"),
        (["topics.alerts=someone-elses-alerts"], "topics.alerts", "someone-elses-alerts"),
        (
            [
                "kafka.group_id=intruders",
                f"topics.metrics={GROUP}-metrics",
                f"topics.dead_letters={GROUP}-dead-letters",
                f"topics.state={GROUP}-state",
            ],
            "kafka.group_id",
            "intruders",
        ),
    ],
    ids=["wrong password", "unknown CA", "missing topic ACL", "missing group ACL"],
)
def test_refusals_exit_2_naming_the_setting(
    secured: Secured, tmp_path: Path, sets: list[str], setting: str, named: str
) -> None:
    other_ca = tmp_path / "other-ca.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(tmp_path / "other.key"), "-out", str(other_ca), "-subj", "/CN=other",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    flags = [arg for s in sets for arg in ("--set", s.format(other_ca=other_ca))]
    code, output = secured.cli("run", *flags, timeout=60)
    assert code == 2, output
    assert f"- {setting}:" in output
    assert named in output
    assert "Traceback" not in output


@pytest.mark.parametrize(
    "command",
    [
        ["tail", "--set", "topics.alerts=someone-elses-alerts", "--limit", "1"],
        ["record", "--topic", "someone-elses-alerts", "--out", "{tmp}/out.jsonl"],
        ["replay", "{tmp}/in.jsonl", "--topic", "someone-elses-alerts"],
        ["dashboard", "--set", "topics.alerts=someone-elses-alerts", "--port", "0"],
    ],
    ids=["tail", "record", "replay", "dashboard"],
)
def test_every_command_names_the_topic_it_may_not_use(
    secured: Secured, tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "in.jsonl").write_text('{"value": {"event_id": "e1"}}\n', "utf-8")
    code, output = secured.cli(*(arg.format(tmp=tmp_path) for arg in command), timeout=60)
    assert code == 2, output
    assert "someone-elses-alerts is a topic User:monitor is not authorized for" in output
    assert "Traceback" not in output
