"""The dashboard against the real broker fed by the simulator: JSON API, live updates, browser.

The browser test drives headless Chromium (Debian packages ``chromium`` and ``chromium-driver``)
and saves a screenshot to ``$STREAM_MONITOR_ARTIFACTS`` (default ``build/test-artifacts``).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web

from stream_monitor.config import Settings
from stream_monitor.dashboard import Dashboard, serve
from stream_monitor.devtools.simulator import simulate
from stream_monitor.events.alerts import AlertEvent, alert_id_for, dedup_key_for
from stream_monitor.events.codec import encode_event
from stream_monitor.runtime.worker import Worker

from .runtime_helpers import SMALL_WINDOWS, isolated_settings, produce

HOSTILE_MODEL = "<script>window.__xss = 1</script>"
HOSTILE_FEATURE = '<img src=x onerror="window.__xss = 2">'
T0 = 1_795_800_000_000
SIM_EVENTS = 4_000


@dataclass
class Running:
    settings: Settings
    worker: Worker
    dashboard: Dashboard
    url: str


def hostile_events(count: int = 700) -> list[tuple[bytes, bytes]]:
    rng = random.Random(7)
    return [
        (
            b"hostile",
            orjson.dumps(
                {
                    "event_id": f"h{i}",
                    "model_id": HOSTILE_MODEL,
                    "timestamp": T0 + i * 100,
                    "features": {HOSTILE_FEATURE: rng.gauss(0, 1)},
                    "prediction": 1,
                    "score": rng.random(),
                }
            ),
        )
        for i in range(count)
    ]


async def eventually(check: Callable[[], Any], budget: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.3)
    raise AssertionError(f"not within {budget} s: {what}")


@pytest.fixture
async def running(kafka_bootstrap: str) -> AsyncIterator[Running]:
    """Worker + simulator (2 models, covariate drift, segments by channel) + hostile model +
    dashboard."""
    segmented = {"by": ["channel"], "warmup_events": 100, "min_events": 50}
    settings = isolated_settings(
        kafka_bootstrap,
        monitoring={"default": {**SMALL_WINDOWS["default"], "segments": segmented}},
    )
    worker = Worker(settings)
    task = asyncio.create_task(worker.run())
    runner: web.AppRunner | None = None
    try:
        await asyncio.wait_for(worker.ready.wait(), 60)
        runner, dashboard, port = await serve(settings, "127.0.0.1", 0)
        await simulate(
            settings,
            models=2,
            events=SIM_EVENTS,
            scenario="covariate",
            drift_at=SIM_EVENTS // 4,
            label_delay=20,
            seed=5,
        )
        await produce(kafka_bootstrap, settings.topics.predictions, hostile_events())
        await eventually(
            lambda: len([m for m in dashboard.store.models() if m["windows"] >= 2]) == 3,
            what="three models with two windows each on the dashboard",
        )
        yield Running(settings, worker, dashboard, f"http://127.0.0.1:{port}")
    finally:
        if runner is not None:
            await runner.cleanup()
        worker.stop()
        await asyncio.wait_for(task, 30)


def injected_alert(model: str) -> AlertEvent:
    dedup = dedup_key_for(model, "drift.injected", "amount")
    return AlertEvent(
        alert_id=alert_id_for(dedup, "firing", T0 + 999_000),
        dedup_key=dedup,
        status="firing",
        severity="critical",
        model_id=model,
        kind="drift",
        rule="drift.injected",
        feature="amount",
        statistic="psi",
        value=0.9,
        threshold=0.2,
        window_start=T0,
        window_end=T0 + 999_000,
        sample_size=300,
        starts_at=T0 + 999_000,
        summary="injected by the test",
    )


async def test_api_serves_models_windows_alerts_and_live_events(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:
        models = (await client.get("/api/models")).json()
        assert {m["model_id"] for m in models} == {"model-0", "model-1", HOSTILE_MODEL}
        assert all(m["status"] in {"ok", "warning", "critical"} for m in models)
        detail = (await client.get("/api/models/model-0")).json()
        assert detail["windows"] == sorted(detail["windows"], key=lambda w: w["window_index"])
        assert "amount" in str(detail["windows"][-1]["drift"]) or detail["windows"][-1]["drift"]
        assert (await client.get("/api/models/nope")).status_code == 404
        # The drill-down's data: the rule's thresholds, and per measured window every feature's
        # distribution on the reference's bins beside the reference's shares.
        drift = running.settings.model_spec("model-0").drift
        assert detail["thresholds"] == {
            "statistic": drift.statistic,
            "warning": drift.warning,
            "critical": drift.critical,
        }
        last = detail["windows"][-1]
        assert set(last["distributions"]) == set(last["drift"]) | {"<prediction>"}
        for distribution in last["distributions"].values():
            bins = distribution.get("categories") or [None, *distribution["edges"]]
            assert len(bins) == len(distribution["reference"]) == len(distribution["window"])
            assert sum(distribution["reference"]) == pytest.approx(1.0)
        assert sum(last["distributions"]["amount"]["window"]) == last["sample_size"]
        page = await client.get("/")
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert HOSTILE_MODEL not in page.text  # the page itself holds no event data
        plotly = await client.get("/static/plotly.min.js")
        assert plotly.status_code == 200
        assert len(plotly.content) > 1_000_000
        assert (await client.get("/static/../app.py")).status_code == 404
        async with client.stream("GET", "/api/events") as stream:
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith(": connected")
            alert = injected_alert("model-1")
            await produce(
                running.settings.kafka.bootstrap_servers,
                running.settings.topics.alerts,
                [(alert.dedup_key.encode(), encode_event(alert))],
            )
            received: list[str] = []
            async with asyncio.timeout(30):
                async for line in lines:
                    received.append(line)
                    if line.startswith("data:") and alert.alert_id in line:
                        break
        assert "event: alert" in received
    models = {m["model_id"]: m for m in running.dashboard.store.models()}
    assert models["model-1"]["status"] == "critical"


async def test_the_dashboard_requires_the_token_off_loopback(kafka_bootstrap: str) -> None:
    token = "a-long-dashboard-token"
    settings = isolated_settings(kafka_bootstrap, http={"port": 0, "auth_token": token})
    runner, _, port = await serve(settings, "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/api/models")).status_code == 401
            ok = await client.get("/api/models", auth=("viewer", token))
            assert ok.status_code == 200
            assert token not in ok.text
    finally:
        await runner.cleanup()
    with pytest.raises(Exception, match="auth_token"):
        isolated_settings(kafka_bootstrap, http={"host": "0.0.0.0"})


async def drill_down(running: Running, js: Callable[[str], Any], browser: Any) -> None:
    """The drill-down of model-0: a drifting feature's distribution beside the reference's, its
    statistic over time with the thresholds and its alerts; another window on request."""
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:
        detail = (await client.get("/api/models/model-0")).json()
    measured = [w for w in detail["windows"] if w.get("distributions") and not w.get("segment")]
    alerted = [a["feature"] for a in detail["alerts"] if a["kind"] == "drift" and a["feature"]]
    assert alerted, "the simulated covariate drift raised drift alerts"
    feature = alerted[0]
    await js(
        "const s = document.getElementById('feature'); s.value = "
        + orjson.dumps(feature).decode()
        + "; s.dispatchEvent(new Event('change'))"
    )
    chart = "document.getElementById('distribution-chart')"
    await eventually(
        lambda: js("return document.querySelectorAll('#distribution-chart .bars').length === 2"),
        what="reference and window bars drawn",
    )
    latest = measured[-1]
    bins = len(latest["distributions"][feature]["window"])
    assert await js(f"return {chart}.data.map(t => t.x.length)") == [bins, bins]
    assert await js(f"return {chart}.data[1].name") == f"window #{latest['window_index']}"
    shares = await js(f"return {chart}.data[0].y")
    assert shares == pytest.approx(latest["distributions"][feature]["reference"])
    statistic = "document.getElementById('feature-chart')"
    thresholds = await js(
        f"return {statistic}.layout.shapes.filter(s => s.xref === 'paper').map(s => s.y0)"
    )
    assert thresholds == [detail["thresholds"]["warning"], detail["thresholds"]["critical"]]
    names = await js(f"return {statistic}.data.map(t => t.name)")
    assert "firing alerts" in names
    markers = await js(f"return {statistic}.data.find(t => t.name === 'firing alerts').x.length")
    assert markers == sum(
        a["status"] == "firing" and a["feature"] == feature for a in detail["alerts"]
    )
    # Another window: its distribution replaces the latest's.
    first = measured[0]["window_index"]
    await js(
        f"const w = document.getElementById('window'); w.value = '{first}';"
        " w.dispatchEvent(new Event('change'))"
    )
    await eventually(
        lambda: js(f"return {chart}.data[1].name === 'window #{first}'"),
        what="the chosen window's distribution",
    )
    # A segment: every chart shows its windows, the drill-down its latest distribution.
    assert not await js("return document.getElementById('segment-choice').hidden")
    options = await js("return [...document.getElementById('segment').options].map(o => o.value)")
    assert options == ["", "channel=app", "channel=pos", "channel=web"]
    own = [
        w
        for w in detail["windows"]
        if w.get("segment") == "channel=app" and w.get("distributions", {}).get(feature)
    ]
    await js(
        "const g = document.getElementById('segment'); g.value = 'channel=app';"
        " g.dispatchEvent(new Event('change'))"
    )
    await eventually(
        lambda: js(f"return {chart}.data[1].name === 'window #{own[-1]['window_index']}'"),
        what="the segment's latest distribution",
    )
    segment_share = own[-1]["distributions"][feature]["reference"]
    assert await js(f"return {chart}.data[0].y") == pytest.approx(segment_share)
    shown = await js("return document.getElementById('model-windows').textContent")
    assert shown == f"{sum(w.get('segment') == 'channel=app' for w in detail['windows'])} windows"
    await js("document.getElementById('drilldown').scrollIntoView()")
    await asyncio.sleep(0.5)
    artifacts = Path(os.environ.get("STREAM_MONITOR_ARTIFACTS", "build/test-artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
    shot = artifacts / "dashboard-drilldown.png"
    assert await asyncio.to_thread(browser.save_screenshot, str(shot))
    assert shot.stat().st_size > 10_000


def _browser() -> Any:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        message = (
            "headless Chromium is needed for the browser test: "
            "apt-get install chromium chromium-driver"
        )
        if os.environ.get("STREAM_MONITOR_REQUIRE_BROWSER"):
            pytest.fail(message + " (STREAM_MONITOR_REQUIRE_BROWSER=1, so this fails)")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1400,1100",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


async def test_browser_shows_models_charts_live_alerts_and_escapes_event_strings(
    running: Running,
) -> None:
    browser = await asyncio.to_thread(_browser)

    async def js(script: str) -> Any:
        return await asyncio.to_thread(browser.execute_script, script)

    try:
        await asyncio.to_thread(browser.get, running.url + "/")
        await eventually(
            lambda: js("return document.querySelectorAll('#models li').length === 3"),
            what="three models listed",
        )
        await js("document.querySelector('button[data-model=\"model-0\"]').click()")
        await eventually(
            lambda: js("return document.getElementById('model-title').textContent === 'model-0'"),
            what="model-0 selected",
        )
        for chart in ("drift-chart", "performance-chart", "quality-chart"):
            await eventually(
                lambda chart=chart: js(
                    f"return document.querySelectorAll('#{chart} .scatterlayer .trace').length > 0"
                ),
                what=f"{chart} drawn by plotly",
            )
        assert await js("return document.getElementById('connection').dataset.state") == "live"
        await drill_down(running, js, browser)
        alert = injected_alert("model-0")
        await produce(
            running.settings.kafka.bootstrap_servers,
            running.settings.topics.alerts,
            [(alert.dedup_key.encode(), encode_event(alert))],
        )
        await eventually(  # live: no reload
            lambda: js(
                f"return !!document.querySelector('tr[data-alert-id=\"{alert.alert_id}\"]')"
            ),
            what="the injected alert in the table",
        )
        status = "return document.querySelector('li[data-status] button[data-model=\"model-0\"]')"
        assert await js(status + ".parentElement.dataset.status") == "critical"
        # Hostile strings from events are shown as text and never run.
        await js("document.querySelectorAll('#models button')[0].click()")
        await eventually(
            lambda: js(
                "return document.getElementById('model-title').textContent === "
                + orjson.dumps(HOSTILE_MODEL).decode()
            ),
            what="the hostile model's page",
        )
        await eventually(
            lambda: js("return document.querySelectorAll('#drift-chart .legendtext').length > 0"),
            what="the hostile model's drift chart",
        )
        assert await js("return window.__xss === undefined")
        assert await js("return document.querySelectorAll('script:not([src])').length") == 0
        assert await js("return document.querySelectorAll('img').length") == 0
        legend = await js(
            "return [...document.querySelectorAll('#drift-chart .legendtext')]"
            ".map(e => e.textContent)"
        )
        assert HOSTILE_FEATURE in legend
        listed = await js("return document.querySelector('#models .name').textContent")
        assert listed == HOSTILE_MODEL
        artifacts = Path(os.environ.get("STREAM_MONITOR_ARTIFACTS", "build/test-artifacts"))
        artifacts.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
        await js("document.querySelector('button[data-model=\"model-0\"]').click()")
        await asyncio.sleep(1.5)
        shot = artifacts / "dashboard.png"
        assert await asyncio.to_thread(browser.save_screenshot, str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        await asyncio.to_thread(browser.quit)
