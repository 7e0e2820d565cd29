"""The webhook sink: generic JSON, Slack and PagerDuty Events v2 payloads over HTTP.

Each request has a timeout; failures are retried by the bus with exponential backoff and jitter;
after ``breaker_failures`` consecutive failures the circuit breaker opens and deliveries fail fast
for ``breaker_reset`` seconds, so a dead endpoint costs no timeouts.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from stream_monitor.config.sinks import WebhookSinkSpec
from stream_monitor.events.alerts import AlertEvent
from stream_monitor.sinks.base import Sink, SinkError, json_client

__all__ = ["WebhookSink", "payload_for"]

_PAGERDUTY_SEVERITY = {"info": "info", "warning": "warning", "critical": "critical"}


def payload_for(alert: AlertEvent, spec: WebhookSinkSpec) -> dict[str, Any]:
    """The JSON body in the configured shape."""
    if spec.format == "slack":
        icon = {"critical": ":red_circle:", "warning": ":large_orange_circle:"}.get(
            alert.severity, ":large_blue_circle:"
        )
        if alert.status == "resolved":
            icon = ":white_check_mark:"
        text = f"{icon} [{alert.status.upper()}] {alert.summary}"
        if alert.runbook_url:
            text += f" <{alert.runbook_url}|runbook>"
        return {"text": text}
    if spec.format == "pagerduty":
        body: dict[str, Any] = {
            "routing_key": spec.routing_key.get_secret_value() if spec.routing_key else "",
            "event_action": "trigger" if alert.status == "firing" else "resolve",
            "dedup_key": alert.dedup_key,
        }
        if alert.status == "firing":
            body["payload"] = {
                "summary": alert.summary[:1024],
                "source": alert.model_id,
                "severity": _PAGERDUTY_SEVERITY[alert.severity],
                "component": alert.feature or "prediction",
                "group": alert.kind,
                "class": alert.rule,
                "custom_details": alert.model_dump(mode="json"),
            }
            if alert.runbook_url:
                body["links"] = [{"href": alert.runbook_url, "text": "runbook"}]
        return body
    return alert.model_dump(mode="json")


class WebhookSink(Sink):
    """POSTs each alert; raises on failure so the bus retries."""

    def __init__(self, spec: WebhookSinkSpec, transport: httpx.AsyncBaseTransport | None = None):
        super().__init__(spec)
        self.webhook = spec
        self.client = json_client(spec.token, spec.timeout, transport)
        self.failures = 0
        self.open_until = 0.0

    async def publish(self, alert: AlertEvent) -> None:
        """POST one alert (fails fast while the circuit breaker is open)."""
        if self.failures >= self.webhook.breaker_failures and time.monotonic() < self.open_until:
            raise SinkError(f"circuit open for {self.open_until - time.monotonic():.1f} s more")
        try:
            response = await self.client.post(
                self.webhook.url, json=payload_for(alert, self.webhook)
            )
        except httpx.HTTPError as exc:
            self._failed()
            raise SinkError(f"{type(exc).__name__}: {exc}") from None
        if response.status_code >= 300:
            self._failed()
            raise SinkError(f"HTTP {response.status_code} from the webhook")
        self.failures = 0

    def _failed(self) -> None:
        self.failures += 1
        if self.failures >= self.webhook.breaker_failures:
            self.open_until = time.monotonic() + self.webhook.breaker_reset

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()
