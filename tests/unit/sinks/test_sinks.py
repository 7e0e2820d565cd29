"""Alert bus and sinks: routing, retries with backoff, failures recorded, a real HTTP server."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import structlog

from stream_monitor.config.sinks import FileSinkSpec, LogSinkSpec, WebhookSinkSpec
from stream_monitor.events import AlertEvent
from stream_monitor.sinks import AlertBus, FileSink, ListSink, LogSink, WebhookSink, payload_for
from stream_monitor.sinks import webhook as webhook_module
from stream_monitor.sinks.base import Sink, SinkError


def alert(
    severity: str = "critical", model: str = "fraud", status: str = "firing", kind: str = "drift"
) -> AlertEvent:
    return AlertEvent(
        alert_id=f"id-{severity}-{model}-{status}",
        dedup_key="k1",
        status=status,  # type: ignore[arg-type]
        severity=severity,
        model_id=model,
        kind=kind,
        rule="drift.psi",  # type: ignore[arg-type]
        feature="amount",
        statistic="psi",
        value=0.4,
        threshold=0.25,
        window_start=1,
        window_end=2,
        sample_size=1000,
        starts_at=1,
        summary="fraud: amount drifted",
        runbook_url="https://runbooks/x",
    )


class Recorder(BaseHTTPRequestHandler):
    """A webhook endpoint whose behaviour the test scripts: fail, hang, or accept."""

    plan: ClassVar[list[str]] = []
    received: ClassVar[list[dict[str, Any]]] = []
    auth: ClassVar[list[str | None]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        action = self.plan.pop(0) if self.plan else "ok"
        if action == "hang":
            threading.Event().wait(1.0)
        if action == "fail":
            self.send_response(503)
            self.end_headers()
            return
        type(self).received.append(json.loads(body))
        type(self).auth.append(self.headers.get("authorization"))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def server() -> Iterator[str]:
    Recorder.plan, Recorder.received, Recorder.auth = [], [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook"
    httpd.shutdown()
    httpd.server_close()


async def test_routing_filters() -> None:
    critical_only = ListSink(
        LogSinkSpec(name="pager", min_severity="critical", models=("fr*",), kinds=("drift",))
    )
    everything = ListSink()
    bus = AlertBus([critical_only, everything])
    await bus.start()
    for item in (alert(), alert("warning"), alert(model="churn"), alert(kind="data_quality")):
        await bus.publish(item)
    await bus.close()
    assert [a.alert_id for a in critical_only.alerts] == ["id-critical-fraud-firing"]
    assert len(everything.alerts) == 4
    assert bus.stats() == {"pager": {"delivered": 1}, "list": {"delivered": 4}}


async def test_webhook_retries_through_failures_and_timeouts(server: str) -> None:
    Recorder.plan = ["fail", "hang", "ok"]
    spec = WebhookSinkSpec(url=server, timeout=0.3, retries=3, backoff=0.01, token="s3cret")  # type: ignore[arg-type]
    bus = AlertBus([WebhookSink(spec)], seed=1)
    await bus.start()
    await bus.publish(alert())
    await bus.close()
    assert len(Recorder.received) == 1
    assert Recorder.received[0]["alert_id"] == "id-critical-fraud-firing"
    assert Recorder.auth == ["Bearer s3cret"]
    assert bus.stats()["webhook"] == {"retried": 2, "delivered": 1}


async def test_failed_delivery_is_logged_with_the_alert_and_counted(server: str) -> None:
    Recorder.plan = ["fail"] * 10
    spec = WebhookSinkSpec(url=server, retries=2, backoff=0.01, breaker_failures=100)
    other = ListSink()
    bus = AlertBus([WebhookSink(spec), other], seed=1)
    await bus.start()
    with structlog.testing.capture_logs() as logs:
        await bus.publish(alert())
        await bus.close()
    assert bus.stats()["webhook"] == {"retried": 2, "failed": 1}
    assert len(other.alerts) == 1  # the failing sink did not stop the others
    failure = next(entry for entry in logs if entry["event"] == "alert delivery failed")
    assert failure["log_level"] == "error"
    assert failure["alert"]["alert_id"] == "id-critical-fraud-firing"
    assert "HTTP 503" in failure["error"]


async def test_circuit_breaker_fails_fast_then_recovers(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The breaker's clock is the sink module's: stepped by hand, so a busy machine cannot
    # make the open period end early or late.
    now = [1000.0]
    monkeypatch.setattr(webhook_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    Recorder.plan = ["fail", "fail"]
    spec = WebhookSinkSpec(url=server, retries=0, breaker_failures=2, breaker_reset=30)
    sink = WebhookSink(spec)
    for _ in range(2):
        with pytest.raises(SinkError, match="HTTP 503"):
            await sink.publish(alert())
    now[0] += 29.9
    with pytest.raises(SinkError, match=r"circuit open for 0\.1 s more"):
        await sink.publish(alert())
    assert len(Recorder.received) == 0
    now[0] += 0.2
    await sink.publish(alert())  # half-open: the endpoint is back
    assert len(Recorder.received) == 1
    await sink.close()


async def test_unreachable_webhook_is_a_sink_error() -> None:
    sink = WebhookSink(WebhookSinkSpec(url="http://127.0.0.1:9/none", timeout=0.5))
    with pytest.raises(SinkError, match="ConnectError"):
        await sink.publish(alert())
    await sink.close()


def test_slack_and_pagerduty_payloads() -> None:
    slack = payload_for(alert(), WebhookSinkSpec(url="http://x", format="slack"))
    assert slack["text"].startswith(":red_circle: [FIRING] fraud: amount drifted")
    assert "<https://runbooks/x|runbook>" in slack["text"]
    resolved = payload_for(
        alert(status="resolved"), WebhookSinkSpec(url="http://x", format="slack")
    )
    assert resolved["text"].startswith(":white_check_mark: [RESOLVED]")
    spec = WebhookSinkSpec(url="http://x", format="pagerduty", routing_key="rk")  # type: ignore[arg-type]
    trigger = payload_for(alert(), spec)
    assert (trigger["event_action"], trigger["dedup_key"], trigger["routing_key"]) == (
        "trigger",
        "k1",
        "rk",
    )
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "fraud"
    assert trigger["links"] == [{"href": "https://runbooks/x", "text": "runbook"}]
    resolve = payload_for(alert(status="resolved"), spec)
    assert resolve["event_action"] == "resolve"
    assert "payload" not in resolve


async def test_file_and_log_sinks(tmp_path: Path) -> None:
    path = tmp_path / "out" / "alerts.jsonl"
    bus = AlertBus([FileSink(FileSinkSpec(path=path)), LogSink()])
    await bus.start()
    with structlog.testing.capture_logs() as logs:
        await bus.publish(alert())
        await bus.publish(alert(status="resolved"))
        await bus.flush()
        lines = path.read_text().splitlines()
        await bus.close()
    assert [json.loads(line)["status"] for line in lines] == ["firing", "resolved"]
    assert [entry["log_level"] for entry in logs] == ["warning", "info"]
    assert logs[0]["dedup_key"] == "k1"


async def test_slow_sink_applies_backpressure() -> None:
    class Slow(ListSink):
        async def publish(self, item: AlertEvent) -> None:
            await asyncio.sleep(0.05)
            await super().publish(item)

    slow = Slow(LogSinkSpec(name="slow", queue_size=2))
    bus = AlertBus([slow])
    await bus.start()
    started = asyncio.get_running_loop().time()
    for i in range(6):
        await bus.publish(alert(model=f"m{i}"))
        assert slow_queue(bus) <= 2  # memory stays bounded: publish waited
    assert asyncio.get_running_loop().time() - started >= 0.1
    await bus.close()
    assert len(slow.alerts) == 6


def slow_queue(bus: AlertBus) -> int:
    return bus.subscriptions[0].queue.qsize()


def test_sink_base_defaults() -> None:
    class Minimal(Sink):
        async def publish(self, item: AlertEvent) -> None:
            return None

    sink = Minimal(LogSinkSpec())
    assert sink.name == "log"
    asyncio.run(sink.flush())
    asyncio.run(sink.close())


async def test_marks_tell_when_published_alerts_are_done_and_load_tells_how_full() -> None:
    release = asyncio.Event()

    class Gated(ListSink):
        async def publish(self, item: AlertEvent) -> None:
            await release.wait()
            await super().publish(item)

    gated = Gated(LogSinkSpec(name="gated", queue_size=4))
    bus = AlertBus([gated])
    assert bus.load() == 0.0
    assert bus.reached(bus.mark())  # nothing published: nothing to wait for
    await bus.start()
    for i in range(3):
        await bus.publish(alert(model=f"m{i}"))
    mark = bus.mark()
    assert mark == (3,)
    await asyncio.sleep(0.01)  # the first alert is taken out of the queue, two wait
    assert bus.load() == 0.5
    assert not bus.reached(mark)
    release.set()
    await bus.flush()
    assert bus.reached(mark)
    assert bus.load() == 0.0
    await bus.settle()
    await bus.close()
    assert [a.model_id for a in gated.alerts] == ["m0", "m1", "m2"]
