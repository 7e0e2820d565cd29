"""What the dashboard knows: window summaries and alerts per model, bounded, with live fan-out.

Pure logic (no I/O): the app feeds it records from the metrics and alerts topics and serves what
it holds. A revised summary (late labels) replaces the window it revises. A model's status is the
worst severity among its incidents whose latest alert is ``firing``.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from stream_monitor.events.alerts import incident_status

__all__ = ["DashboardStore"]

_SUBSCRIBER_QUEUE = 1_000


@dataclass
class _Model:
    # (window index, segment or "" for all of the model's events) -> summary
    windows: OrderedDict[tuple[int, str], dict[str, Any]] = field(default_factory=OrderedDict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)  # dedup_key -> latest

    def status(self) -> str:
        return incident_status(self.incidents.values())[0]


class DashboardStore:
    """Summaries and alerts of every model seen, newest kept within the configured bounds."""

    def __init__(self, max_windows: int = 500, max_alerts: int = 500) -> None:
        self.max_windows = max_windows
        self.max_alerts = max_alerts
        self._models: dict[str, _Model] = {}
        self._subscribers: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = set()
        self.dropped_updates = 0

    # -- input ----------------------------------------------------------------------------

    def add_summary(self, summary: dict[str, Any]) -> None:
        """A window summary from the metrics topic (a revision replaces its window); a
        segment's summaries are kept beside the model's, as many windows of each."""
        model = self._model(str(summary["model_id"]))
        key = (int(summary["window_index"]), str(summary.get("segment") or ""))
        known = model.windows.get(key)
        if known is not None and int(known.get("revision", 0)) > int(summary.get("revision", 0)):
            return  # an older revision arriving late changes nothing
        model.windows[key] = summary
        model.windows = OrderedDict(sorted(model.windows.items()))
        indices = sorted({index for index, _ in model.windows})
        if len(indices) > self.max_windows:
            oldest = indices[-self.max_windows]
            for stale in [k for k in model.windows if k[0] < oldest]:
                del model.windows[stale]
        self._notify("summary", summary)

    def add_alert(self, alert: dict[str, Any]) -> None:
        """An alert from the alerts topic (repeats of the same alert id are ignored)."""
        model = self._model(str(alert["model_id"]))
        if any(a["alert_id"] == alert["alert_id"] for a in model.alerts):
            return
        model.alerts.append(alert)
        del model.alerts[: -self.max_alerts]
        latest = model.incidents.get(alert["dedup_key"])
        if latest is None or int(alert["window_end"]) >= int(latest["window_end"]):
            model.incidents[alert["dedup_key"]] = alert
        self._notify("alert", alert)

    # -- output ---------------------------------------------------------------------------

    def models(self) -> list[dict[str, Any]]:
        """Every model with its status, firing incidents and last window."""
        out = []
        for model_id in sorted(self._models):
            model = self._models[model_id]
            own = [w for (_, segment), w in model.windows.items() if not segment]
            last = own[-1] if own else None
            out.append(
                {
                    "model_id": model_id,
                    "status": model.status(),
                    "firing": sum(a["status"] == "firing" for a in model.incidents.values()),
                    "windows": len(own),
                    "segments": sorted({s for _, s in model.windows if s}),
                    "last_window": None
                    if last is None
                    else {
                        "window_index": last["window_index"],
                        "window_end": last["window_end"],
                        "sample_size": last["sample_size"],
                    },
                }
            )
        return out

    def model(
        self, model_id: str, since: int | None = None, until: int | None = None
    ) -> dict[str, Any] | None:
        """One model: status, its windows (oldest first) and its alerts (newest first).

        ``since`` and ``until`` (epoch ms) keep the windows and alerts whose window ended in
        [since, until).
        """
        model = self._models.get(model_id)
        if model is None:
            return None

        def inside(record: dict[str, Any]) -> bool:
            end = int(record["window_end"])
            return (since is None or end >= since) and (until is None or end < until)

        return {
            "model_id": model_id,
            "status": model.status(),
            "windows": [w for w in model.windows.values() if inside(w)],
            "alerts": sorted(
                (a for a in model.alerts if inside(a)),
                key=lambda a: int(a["window_end"]),
                reverse=True,
            ),
        }

    def incidents(self, model_id: str) -> list[dict[str, Any]]:
        """The latest alert of each incident of ``model_id``."""
        model = self._models.get(model_id)
        return [] if model is None else list(model.incidents.values())

    def subscribe(self) -> asyncio.Queue[tuple[str, dict[str, Any]]]:
        """A queue of ("summary" | "alert", record) updates from now on."""
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(_SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, dict[str, Any]]]) -> None:
        """Stop sending updates to ``queue``."""
        self._subscribers.discard(queue)

    def _model(self, model_id: str) -> _Model:
        return self._models.setdefault(model_id, _Model())

    def _notify(self, kind: str, record: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait((kind, record))
            except asyncio.QueueFull:  # a stalled browser: it reloads the state on reconnect
                self.dropped_updates += 1
