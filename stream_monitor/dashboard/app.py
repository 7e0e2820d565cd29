"""The dashboard web app: reads the alerts and metrics topics, serves a live page and a JSON API.

It consumes the topics itself (no consumer group, from the beginning), so it shows every worker of
the group and survives their restarts. With ``history.database`` set it reads its history from that
database (written by ``stream-monitor store``) and the topics only from where the store has got to,
so a restart re-reads nothing and history outlives topic retention.

The page is static HTML and JavaScript from this package; charts are drawn by the plotly.js file
that the installed ``plotly`` package ships, so nothing is fetched from the internet. Every string
that comes from events is put in the page as text (``textContent``), never as HTML. Live updates are
server-sent events on ``/api/events``.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from stream_monitor.config.settings import Settings
from stream_monitor.dashboard.store import DashboardStore
from stream_monitor.errors import StreamMonitorError
from stream_monitor.events.alerts import incident_status
from stream_monitor.history.sql import SqlHistory, open_history
from stream_monitor.history.writer import assign_from
from stream_monitor.kafka.connection import client_kwargs
from stream_monitor.logs import get_logger
from stream_monitor.observability.server import auth_middleware, start_site

__all__ = ["Dashboard", "plotly_js", "serve"]

log = get_logger("stream_monitor.dashboard")

_STATIC = importlib.resources.files("stream_monitor.dashboard") / "static"
_SECURITY_HEADERS = {
    # plotly.js sets inline styles on the elements it draws; no inline or remote scripts
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_KEEPALIVE = 15.0


def plotly_js() -> Path:
    """The plotly.js bundle inside the installed ``plotly`` package."""
    path = Path(str(importlib.resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():
        raise StreamMonitorError(
            f"plotly.min.js not found at {path}: reinstall the plotly package (pip install plotly)"
        )
    return path


class Dashboard:
    """Consumer of the output topics plus the aiohttp application that serves them."""

    def __init__(self, settings: Settings, history: SqlHistory | None = None) -> None:
        self.settings = settings
        self.store = DashboardStore(max_windows=settings.http.dashboard_windows)
        database = settings.history.database
        if history is None and database is not None:
            history = open_history(database.get_secret_value())
        self.history = history
        self.loaded = asyncio.Event()  # set once the topics have been read up to their end
        self._consumer_task: asyncio.Task[None] | None = None
        token = settings.http.auth_token
        self.app = web.Application(
            middlewares=[auth_middleware(token.get_secret_value() if token else None)]
        )
        self.app.on_response_prepare.append(_secure)
        self.app.router.add_get("/", self._index)
        self.app.router.add_get("/static/plotly.min.js", self._plotly)
        self.app.router.add_get("/static/{name}", self._static)
        self.app.router.add_get("/api/models", self._models)
        self.app.router.add_get("/api/models/{model_id}", self._model)
        self.app.router.add_get("/api/events", self._events)
        self.app.router.add_get("/healthz", self._health)
        self.app.on_startup.append(self._start_consumer)
        self.app.on_cleanup.append(self._stop_consumer)

    # -- consuming ------------------------------------------------------------------------

    async def _start_consumer(self, _: web.Application) -> None:
        self._consumer_task = asyncio.create_task(self.consume(), name="dashboard-consumer")

    async def _stop_consumer(self, _: web.Application) -> None:
        if self._consumer_task is not None:
            self._consumer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer_task
        if self.history is not None:
            self.history.close()

    async def consume(self) -> None:
        """Read the alerts and metrics topics forever (retrying while the broker is away)."""
        topics = self.settings.topics
        while True:
            consumer = AIOKafkaConsumer(
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                **client_kwargs(self.settings.kafka),
            )
            try:
                await consumer.start()
                if self.history is not None:  # only what the store has not stored yet
                    offsets = await asyncio.to_thread(
                        self.history.offsets, [topics.alerts, topics.metrics]
                    )
                    await assign_from(consumer, [topics.alerts, topics.metrics], offsets, wait=5)
                else:
                    consumer.subscribe([topics.alerts, topics.metrics])
                await self._read(consumer, topics.alerts)
            except KafkaError as exc:
                log.warning("cannot read the output topics, retrying", error=str(exc))
                await asyncio.sleep(2.0)
            finally:
                await consumer.stop()

    async def _read(self, consumer: AIOKafkaConsumer, alerts_topic: str) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=5_000)
            for records in batches.values():
                for record in records:
                    self._ingest(record.topic == alerts_topic, record.value)
            if not batches and not self.loaded.is_set():
                self.loaded.set()

    def _ingest(self, is_alert: bool, value: bytes | None) -> None:
        try:
            data = orjson.loads(value or b"")
            if is_alert:
                self.store.add_alert(data)
            else:
                self.store.add_summary(data)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("skipping an unreadable record", error=f"{type(exc).__name__}: {exc}")

    # -- serving --------------------------------------------------------------------------

    async def _index(self, _: web.Request) -> web.StreamResponse:
        return web.Response(
            body=(_STATIC / "index.html").read_bytes(), content_type="text/html", charset="utf-8"
        )

    async def _plotly(self, _: web.Request) -> web.StreamResponse:
        return web.FileResponse(plotly_js(), headers={"Cache-Control": "max-age=86400"})

    async def _static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        types = {".js": "text/javascript", ".css": "text/css"}
        suffix = Path(name).suffix
        resource = _STATIC / name
        if "/" in name or suffix not in types or not resource.is_file():
            raise web.HTTPNotFound
        return web.Response(body=resource.read_bytes(), content_type=types[suffix])

    async def _models(self, _: web.Request) -> web.StreamResponse:
        live = self.store.models()
        if self.history is None:
            return _json(live)
        return _json(await asyncio.to_thread(self._merged_models, live))

    def _merged_models(self, live: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The stored models, with what the live records add to them."""
        history = self.history
        if history is None:
            return live
        incidents = history.incidents_by_model()
        by_id = {m["model_id"]: m for m in history.models(incidents)}
        for model in live:
            known = by_id.get(model["model_id"])
            if known is None:
                by_id[model["model_id"]] = model
                continue
            last, newer = known["last_window"], model["last_window"]
            if newer is not None and (last is None or newer["window_index"] > last["window_index"]):
                known["last_window"] = newer
                index = -1 if last is None else last["window_index"]
                known["windows"] += sum(
                    int(w["window_index"]) > index
                    for w in self.store.model(model["model_id"])["windows"]  # type: ignore[index]
                )
            status, firing = incident_status(
                incidents.get(model["model_id"], ()), self.store.incidents(model["model_id"])
            )
            known["status"], known["firing"] = status, firing
        return [by_id[k] for k in sorted(by_id)]

    async def _model(self, request: web.Request) -> web.StreamResponse:
        model_id = request.match_info["model_id"]
        try:
            since, until = (_epoch_ms(request, name) for name in ("since", "until"))
        except ValueError as exc:
            return _json({"error": str(exc)}, status=400)
        live = self.store.model(model_id, since, until)
        if self.history is not None:
            found = await asyncio.to_thread(self._merged_model, model_id, since, until, live)
        else:
            found = live
        if found is None:
            return _json({"error": "unknown model"}, status=404)
        return _json({**found, "thresholds": self.thresholds(model_id)})

    def thresholds(self, model_id: str) -> dict[str, Any]:
        """The drift rule's statistic and thresholds for ``model_id``, as this configuration has
        them (the drill-down draws them over the statistic)."""
        drift = self.settings.model_spec(model_id).drift
        return {"statistic": drift.statistic, "warning": drift.warning, "critical": drift.critical}

    def _merged_model(
        self, model_id: str, since: int | None, until: int | None, live: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """Stored windows and alerts in the range, with the live ones not stored yet."""
        history = self.history
        if history is None:
            return live
        limit = self.settings.http.dashboard_windows
        windows = {w["window_index"]: w for w in history.windows(model_id, since, until, limit)}
        alerts = {a["alert_id"]: a for a in history.alerts(model_id, since, until, limit)}
        stored_incidents = history.incidents(model_id)
        if live is None and not windows and not alerts and not stored_incidents:
            return None
        for w in (live or {}).get("windows", ()):
            known = windows.get(w["window_index"])
            if known is None or int(known.get("revision", 0)) <= int(w.get("revision", 0)):
                windows[w["window_index"]] = w
        for a in (live or {}).get("alerts", ()):
            alerts.setdefault(a["alert_id"], a)
        ordered = sorted(windows.values(), key=lambda w: (int(w["window_end"]), w["window_index"]))
        status, _ = incident_status(stored_incidents, self.store.incidents(model_id))
        return {
            "model_id": model_id,
            "status": status,
            "windows": ordered[-limit:],
            "alerts": sorted(alerts.values(), key=lambda a: int(a["window_end"]), reverse=True)[
                :limit
            ],
        }

    async def _health(self, _: web.Request) -> web.StreamResponse:
        return _json({"status": "alive", "loaded": self.loaded.is_set()})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        queue = self.store.subscribe()
        try:
            await response.write(b": connected\n\n")
            while True:
                try:
                    kind, record = await asyncio.wait_for(queue.get(), _KEEPALIVE)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                await response.write(
                    b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(record) + b"\n\n"
                )
        except ConnectionResetError:  # the browser went away
            pass
        finally:
            self.store.unsubscribe(queue)
        return response


def _epoch_ms(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a time: give epoch milliseconds") from None


async def _secure(_: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(_SECURITY_HEADERS)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def serve(settings: Settings, host: str, port: int) -> tuple[web.AppRunner, Dashboard, int]:
    """Start the dashboard on ``host:port``; returns the runner, the app and the bound port."""
    dashboard = Dashboard(settings)
    runner, bound = await start_site(dashboard.app, host, port, hint="pick another with --port")
    return runner, dashboard, bound
