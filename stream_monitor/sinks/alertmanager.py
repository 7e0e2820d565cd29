"""The Alertmanager sink: alerts into the Alertmanager most teams already route pages through.

Each alert is posted to ``/api/v2/alerts`` with labels that identify its incident (``alertname``
the rule, ``model``, ``feature`` and ``segment`` when there is one, ``kind``, ``severity`` and
the model spec's ``labels``), annotations for people (``summary``, ``description``, ``evidence``
as JSON, ``runbook_url``), ``startsAt`` (when the incident started), ``endsAt`` once resolved,
and ``generatorURL`` to the dashboard. Alertmanager resolves an alert that is not re-sent within
its ``resolve_timeout``, so the alerts still firing are re-posted every ``repost_interval``.
A failed request raises, and the bus retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from stream_monitor.config.sinks import AlertmanagerSinkSpec
from stream_monitor.events.alerts import AlertEvent
from stream_monitor.logs import get_logger
from stream_monitor.sinks.base import Sink, SinkError, json_client

__all__ = ["AlertmanagerSink", "alertmanager_alert"]

log = get_logger("stream_monitor.sinks.alertmanager")


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def alertmanager_alert(alert: AlertEvent, generator_url: str | None = None) -> dict[str, Any]:
    """One alert in Alertmanager's v2 API shape (``postableAlert``)."""
    labels = {
        **alert.labels,
        "alertname": alert.rule,
        "model": alert.model_id,
        "kind": alert.kind,
        "severity": alert.severity,
    }
    if alert.feature:
        labels["feature"] = alert.feature
    segment = alert.evidence.get("segment")
    if isinstance(segment, str) and segment:
        labels["segment"] = segment
    annotations = {
        "summary": alert.summary,
        "description": f"{alert.statistic} = {alert.value} (threshold {alert.threshold}) over "
        f"{alert.sample_size} events",
        "evidence": orjson.dumps(alert.evidence, default=str).decode(),
    }
    if alert.runbook_url:
        annotations["runbook_url"] = alert.runbook_url
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": _time(alert.starts_at),
    }
    if alert.status == "resolved":
        body["endsAt"] = _time(alert.ends_at if alert.ends_at is not None else alert.window_end)
    if generator_url:
        body["generatorURL"] = f"{generator_url.rstrip('/')}/?model={quote(alert.model_id)}"
    return body


class AlertmanagerSink(Sink):
    """Posts alerts to Alertmanager and re-posts those still firing."""

    def __init__(
        self, spec: AlertmanagerSinkSpec, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        super().__init__(spec)
        self.am = spec
        self.client = json_client(spec.token, spec.timeout, transport)
        self.endpoint = f"{spec.url.rstrip('/')}/api/v2/alerts"
        self.firing: dict[str, dict[str, Any]] = {}  # dedup_key -> the alert as posted
        self.reposter: asyncio.Task[None] | None = None
        # One post at a time: a re-post of a firing alert never lands after its resolution.
        self.posting = asyncio.Lock()

    async def publish(self, alert: AlertEvent) -> None:
        """Post one alert; remember it while it fires."""
        body = alertmanager_alert(alert, self.am.generator_url)
        async with self.posting:
            await self._post([body])
            if alert.status == "firing":
                self.firing[alert.dedup_key] = body
            else:
                self.firing.pop(alert.dedup_key, None)
        if self.reposter is None:
            self.reposter = asyncio.create_task(self._repost(), name="alertmanager-repost")

    async def _post(self, alerts: list[dict[str, Any]]) -> None:
        try:
            response = await self.client.post(self.endpoint, content=orjson.dumps(alerts))
        except httpx.HTTPError as exc:
            raise SinkError(f"{type(exc).__name__}: {exc}") from None
        if response.status_code >= 300:
            raise SinkError(f"HTTP {response.status_code} from Alertmanager: {response.text[:300]}")

    async def _repost(self) -> None:
        while True:
            await asyncio.sleep(self.am.repost_interval)
            async with self.posting:
                if not self.firing:
                    continue
                try:
                    await self._post(list(self.firing.values()))
                except SinkError as exc:  # the next round tries again
                    log.warning("re-posting firing alerts failed", sink=self.name, error=str(exc))

    async def close(self) -> None:
        """Stop re-posting and close the HTTP client."""
        if self.reposter is not None:
            self.reposter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reposter
        await self.client.aclose()
