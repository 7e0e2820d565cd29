"""``stream-monitor backtest``: run the monitors over a recorded stream file, without Kafka.

It decodes every line with the same codec and feeds the same ``MonitorSet`` the streaming agents
use, so "what would have alerted last month?" has the same answer as production would have given.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from stream_monitor._native import Batch
from stream_monitor.config.settings import Settings
from stream_monitor.errors import EventValidationError
from stream_monitor.events.alerts import AlertEvent, WindowSummary
from stream_monitor.events.codec import EventCodec, encode_event
from stream_monitor.events.schemas import LabelEvent
from stream_monitor.monitor.model_monitor import encode_for_core
from stream_monitor.monitor.registry import MonitorSet
from stream_monitor.offline.profiling import load_references, read_chunks

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
    run = _Backtest(settings, on_alert, on_summary, max_errors)
    # Chunk N+1 is read and decoded (the native decoder releases the GIL) while the monitors
    # work on chunk N: decoding is a pure function of the bytes, so the order of everything
    # else is unchanged.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="backtest-decode") as decoding:
        ahead: tuple[int, list[bytes], Future[Batch]] | None = None
        for first, lines in read_chunks(events_path, settings.processing.batch_max_records):
            decoded = decoding.submit(run.codec.decode_batch, lines)
            if ahead is not None:
                run.process(ahead[0], ahead[1], ahead[2].result())
            ahead = (first, lines, decoded)
        if ahead is not None:
            run.process(ahead[0], ahead[1], ahead[2].result())
    if flush:  # the end of the stream: what labels revised, then the windows still open
        run.emit(run.monitors.revisions())
        run.emit(run.monitors.flush())
    return run.report


class _Backtest:
    """One backtest: chunks of lines decoded natively, the rest decided by the schema."""

    def __init__(
        self,
        settings: Settings,
        on_alert: Callable[[bytes], None],
        on_summary: Callable[[bytes], None] | None,
        max_errors: int,
    ) -> None:
        self.codec = EventCodec(settings.limits)
        self.monitors = MonitorSet.from_settings(settings, load_references(settings))
        self.report = BacktestReport()
        self.on_alert = on_alert
        self.on_summary = on_summary
        self.max_errors = max_errors
        self.errors: list[tuple[int, str]] = []  # (line number, why) of the current chunk

    def emit(self, outputs: list[AlertEvent | WindowSummary]) -> None:
        report = self.report
        for output in outputs:
            model = report.models.setdefault(output.model_id, ModelReport())
            if isinstance(output, AlertEvent):
                self.on_alert(encode_event(output))
                report.rules[output.rule] += output.status == "firing"
                if output.status == "firing":
                    model.firing += 1
                else:
                    model.resolved += 1
            else:
                model.windows += 1
                model.late += output.late_events
                if self.on_summary is not None:
                    self.on_summary(encode_event(output))

    def refuse(self, number: int, exc: EventValidationError) -> None:
        self.report.invalid += 1
        self.errors.append((number, f"line {number}: {exc}"))

    def feed(self, batch: Batch, first: int, start: int, stop: int) -> None:
        """The predictions of lines ``start:stop`` of the chunk, as one batch."""
        admitted, refused = self.monitors.admit(batch, start, stop)
        for position, exc in refused:
            self.refuse(first + position, exc)
        for model_id, positions in admitted:
            self.report.predictions += len(positions)
            self.report.models.setdefault(model_id, ModelReport()).events += len(positions)
        self.emit(self.monitors.update_native(batch, admitted))

    def process(self, first: int, lines: list[bytes], batch: Batch) -> None:
        """Lines ``first`` onwards of the file (``batch`` their native decoding), in order:
        predictions natively, labels where they stand; blank lines are skipped."""
        self.report.lines += len(lines)
        start = 0
        for index in batch.deferred():  # labels, conversions and errors: the schema says
            line = lines[index]
            if not line.strip():
                self.report.lines -= 1
                continue
            try:
                event = self.codec.decode_any(line)
            except EventValidationError as exc:
                self.refuse(first + index, exc)
                continue
            if isinstance(event, LabelEvent):
                self.feed(batch, first, start, index)  # the predictions before the label
                start = index + 1
                self.emit(self.monitors.update_label(event))
                self.report.labels += 1
            elif not batch.fill(index, encode_for_core(event)):  # pragma: no cover
                self.refuse(first + index, EventValidationError("<event>", "", "cannot be read"))
        self.feed(batch, first, start, len(lines))
        self.errors.sort()
        room = max(self.max_errors - len(self.report.errors), 0)
        self.report.errors.extend(message for _, message in self.errors[:room])
        self.errors.clear()
