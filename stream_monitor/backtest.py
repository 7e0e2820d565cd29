"""``stream-monitor backtest``: run the monitors over a recorded stream file, without Kafka.

It decodes every line with the same codec and feeds the same ``MonitorSet`` the streaming agents
use, so "what would have alerted last month?" has the same answer as production would have given.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stream_monitor.config.settings import Settings
from stream_monitor.errors import EventValidationError
from stream_monitor.events.alerts import AlertEvent, WindowSummary
from stream_monitor.events.codec import EventCodec, encode_event
from stream_monitor.events.fast import PredictionLike
from stream_monitor.events.schemas import LabelEvent
from stream_monitor.monitor.registry import MonitorSet
from stream_monitor.profiling import load_references, read_lines

__all__ = ["BacktestReport", "run_backtest"]


@dataclass
class ModelReport:
    """What happened to one model during a backtest."""

    events: int = 0
    windows: int = 0
    late: int = 0
    firing: int = 0
    resolved: int = 0


@dataclass
class BacktestReport:
    """Totals of a backtest run."""

    lines: int = 0
    predictions: int = 0
    labels: int = 0
    invalid: int = 0
    errors: list[str] = field(default_factory=list)
    models: dict[str, ModelReport] = field(default_factory=dict)
    rules: Counter[str] = field(default_factory=Counter)


def run_backtest(
    settings: Settings,
    events_path: Path,
    on_alert: Callable[[bytes], None],
    on_summary: Callable[[bytes], None] | None = None,
    *,
    flush: bool = True,
    max_errors: int = 10,
) -> BacktestReport:
    """Feed every event of ``events_path`` to the monitors; alerts go to ``on_alert`` as JSON."""
    codec = EventCodec(settings.limits)
    monitors = MonitorSet.from_settings(settings, load_references(settings))
    report = BacktestReport()

    def emit(outputs: list[AlertEvent | WindowSummary]) -> None:
        for output in outputs:
            model = report.models.setdefault(output.model_id, ModelReport())
            if isinstance(output, AlertEvent):
                on_alert(encode_event(output))
                report.rules[output.rule] += output.status == "firing"
                if output.status == "firing":
                    model.firing += 1
                else:
                    model.resolved += 1
            else:
                model.windows += 1
                model.late += output.late_events
                if on_summary is not None:
                    on_summary(encode_event(output))

    pending: list[PredictionLike] = []  # consecutive predictions, fed as one batch

    def feed() -> None:
        emit(monitors.update_batch(pending))
        pending.clear()

    for number, line in read_lines(events_path):
        report.lines += 1
        try:
            event = codec.decode_any(line)
            if isinstance(event, LabelEvent):
                feed()
                emit(monitors.update_label(event))
                report.labels += 1
                continue
            if event.model_id not in monitors.monitors:
                monitors.monitor(event.model_id)  # refuses models not configured, if so set
        except EventValidationError as exc:
            report.invalid += 1
            if len(report.errors) < max_errors:
                report.errors.append(f"line {number}: {exc}")
            continue
        report.predictions += 1
        report.models.setdefault(event.model_id, ModelReport()).events += 1
        pending.append(event)
        if len(pending) >= settings.processing.batch_max_records:
            feed()
    feed()
    emit(monitors.revisions())
    if flush:
        emit(monitors.flush())
    return report
