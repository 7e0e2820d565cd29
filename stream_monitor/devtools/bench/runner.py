"""`stream-monitor bench`: the end-to-end benchmark on a real broker, with peers in the same run.

1. Load: N events (the reference workload, or a file) go into a fresh predictions topic.
2. Peers (``compare``): raw aiokafka consume-only of that topic (the upper bound), and the
   in-memory core alone (decode, validate, every monitor update) on the same events.
3. Throughput: W worker processes (``stream-monitor run``) in a fresh consumer group consume the
   backlog. Sampled every 0.5 s: committed offsets of the group (processed, lag) and the workers'
   RSS. Rate = processed / time between the first sample with progress and the last offset.
4. Latency: the workers keep running; events stamped with the send time are produced at
   ``latency_fraction`` x the measured rate, with every numeric feature shifted after a quarter of
   the phase so drift alerts fire. Latency = when an alert (or window summary) is read from its
   topic - the time its window's last event was produced (the window end, for count windows).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from stream_monitor.config.settings import Settings
from stream_monitor.devtools.bench.peers import core_rate, produce, produce_paced, raw_consume
from stream_monitor.devtools.bench.workload import MODELS, reference_events
from stream_monitor.errors import StreamMonitorError
from stream_monitor.kafka.connection import client_kwargs
from stream_monitor.monitor.quantiles import percentiles

__all__ = ["BenchOptions", "BenchResult", "run_bench"]


@dataclass(frozen=True)
class BenchOptions:
    """What to measure."""

    events: int = 200_000
    models: int = MODELS  # the reference workload's models, round-robin
    workers: int = 1
    partitions: int = 6
    guarantee: str = "at_least_once"
    compare: bool = False
    faust: bool = True  # with compare: the Faust adapter's agents too (when faust is installed)
    latency_fraction: float = 0.5
    latency_seconds: float = 30.0
    window_events: int = 1000
    segments: tuple[str, ...] = ()  # segments.by of every model (e.g. channel)
    file: Path | None = None
    timeout: float = 1_800.0
    keep_topics: bool = False


@dataclass
class BenchResult:
    """Figures of one run (printed as a table, written as JSON)."""

    options: dict[str, Any]
    loaded: int = 0
    load_rate: float = 0.0
    monitor_rate: float = 0.0
    monitor_seconds: float = 0.0
    lag: list[tuple[float, int]] = field(default_factory=list)
    rss_mb: list[tuple[float, float]] = field(default_factory=list)
    raw_consume_rate: float | None = None
    raw_decode_rate: float | None = None  # consume + orjson.loads of every value
    core_rate: float | None = None
    faust_rate: float | None = None
    latency_rate: float | None = None
    alert_latency_ms: dict[str, float | int | None] = field(default_factory=dict)
    summary_latency_ms: dict[str, float | int | None] = field(default_factory=dict)

    def ratios(self) -> dict[str, float | None]:
        """Monitor rate relative to the peers."""
        return {
            "monitor/raw_consume": _ratio(self.monitor_rate, self.raw_consume_rate),
            "monitor/raw_consume_decode": _ratio(self.monitor_rate, self.raw_decode_rate),
            "monitor/core": _ratio(self.monitor_rate, self.core_rate),
            "monitor/faust": _ratio(self.monitor_rate, self.faust_rate),
        }

    def to_json(self) -> bytes:
        """Everything, for ``--out``."""
        return orjson.dumps({**asdict(self), "ratios": self.ratios()}, option=orjson.OPT_INDENT_2)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def _events(options: BenchOptions) -> list[bytes]:
    if options.file is None:
        return reference_events(options.events, models=options.models)
    from stream_monitor.replay.files import read_records  # noqa: PLC0415 - only for --file

    values = [r.value for r in read_records(options.file) if r.value is not None]
    if not values:
        raise StreamMonitorError(f"{options.file} holds no events")
    return (values * (options.events // len(values) + 1))[: options.events]


def _model_spec(options: BenchOptions) -> dict[str, Any]:
    """What every model of the run is monitored with (the workers' and the core's)."""
    return {
        "warmup_events": options.window_events,
        "window": {"kind": "count", "events": options.window_events},
        "segments": {"by": list(options.segments)},
    }


def _worker_env(
    settings: Settings, group: str, topics: dict[str, str], options: BenchOptions
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_MONITOR_")}
    env.update(
        {
            "STREAM_MONITOR_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "STREAM_MONITOR_KAFKA__GROUP_ID": group,
            "STREAM_MONITOR_TOPICS__PREDICTIONS": topics["predictions"],
            "STREAM_MONITOR_TOPICS__LABELS": topics["labels"],
            "STREAM_MONITOR_TOPICS__ALERTS": topics["alerts"],
            "STREAM_MONITOR_TOPICS__PARTITIONS": topics["partitions"],
            "STREAM_MONITOR_PROCESSING__GUARANTEE": options.guarantee,
            # Progress is read from committed offsets, and at-least-once commits go only as
            # far as a checkpoint: checkpoint as often as the commits, once a second.
            "STREAM_MONITOR_PROCESSING__CHECKPOINT_INTERVAL": "1",
            "STREAM_MONITOR_HTTP__PORT": "0",
            "STREAM_MONITOR_SINKS": '[{"type": "kafka"}]',
            "STREAM_MONITOR_LOGGING__LEVEL": "WARNING",
            "STREAM_MONITOR_MONITORING__DEFAULT": orjson.dumps(_model_spec(options)).decode(),
        }
    )
    return env


LOG = ("-l", "error")


async def _faust_rate(
    settings: Settings,
    options: BenchOptions,
    topics: dict[str, str],
    loaded: int,
    admin: AIOKafkaAdminClient,
) -> float | None:
    """The Faust adapter's agents on the same topic (None when faust is not installed)."""
    try:
        import faust  # noqa: F401, PLC0415 - optional peer
    except ImportError:
        return None
    group = f"{topics['predictions']}-faust"
    env = _worker_env(settings, group, topics, options)
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(  # noqa: ASYNC220 - one long-lived peer process
            [sys.executable, "-m", "faust", "-A", "stream_monitor.faust.app", "worker", *LOG],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            cwd="/tmp",  # noqa: S108 - Faust writes its data folder here
        )
        try:
            return await _progress_rate(
                admin, group, topics["predictions"], loaded, processes=[process], budget=180
            )
        except StreamMonitorError as exc:
            errors.seek(0)
            tail = errors.read().decode(errors="replace").strip().splitlines()[-5:]
            raise StreamMonitorError(f"{exc}: " + " | ".join(tail)) from None
        finally:
            _terminate([process])


async def _progress_rate(
    admin: AIOKafkaAdminClient,
    group: str,
    topic: str,
    loaded: int,
    *,
    processes: list[subprocess.Popen[bytes]],
    budget: float,
) -> float | None:
    """Events/s of a consumer group between its first and its last committed progress.

    Workers commit once per ``processing.commit_interval``, so progress comes in steps. It
    stops when everything is committed, when nothing moved for 10 s (some clients commit the
    offset of the last record rather than the next one), or at ``budget`` seconds.
    """
    started = time.monotonic()
    first: tuple[float, int] | None = None
    last: tuple[float, int] | None = None
    done = 0
    while done < loaded and time.monotonic() - started < budget:
        await asyncio.sleep(0.5)
        if any(p.poll() is not None for p in processes):
            raise StreamMonitorError(f"a peer process of group {group} exited early")
        now = time.monotonic()
        progress = await _group_progress(admin, group, topic)
        if progress > done:
            done = progress
            first = first or (now, done)
            last = (now, done)
        elif last is not None and now - last[0] > 10:
            break
    if first is None or last is None:
        return None
    if last[1] <= first[1]:
        # Everything came in one commit (a small run; commits are a second apart): the rate
        # since the peer started, start-up included, is the best figure there is.
        return round(last[1] / max(last[0] - started, 1e-9), 1)
    return round((last[1] - first[1]) / (last[0] - first[0]), 1)


async def _group_progress(admin: AIOKafkaAdminClient, group: str, topic: str) -> int:
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except KafkaError:  # the group is new: its coordinator is not known yet
        return 0
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


def _rss_mb(pids: list[int]) -> float:
    import psutil  # type: ignore[import-untyped]  # noqa: PLC0415 - only the benchmark needs it

    total = 0.0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss / 1e6
        except psutil.NoSuchProcess:
            continue
    return round(total, 1)


async def _read_latencies(
    settings: Settings, alerts: str, metrics: str, stop: threading.Event, *, committed: bool
) -> tuple[list[float], list[float]]:
    consumer = AIOKafkaConsumer(
        alerts,
        metrics,
        group_id=None,
        auto_offset_reset="latest",
        enable_auto_commit=False,
        # under exactly_once, outputs count once a read_committed consumer can see them
        isolation_level="read_committed" if committed else "read_uncommitted",
        **client_kwargs(settings.kafka),
    )
    await consumer.start()
    alert_ms: list[float] = []
    summary_ms: list[float] = []
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            now = time.time() * 1000
            for records in batches.values():
                for record in records:
                    data = orjson.loads(record.value)
                    if data.get("window_end", 0) < 1e12 or data.get("revision", 0):
                        continue
                    latency = now - data["window_end"]
                    (alert_ms if record.topic == alerts else summary_ms).append(latency)
    finally:
        await consumer.stop()
    return alert_ms, summary_ms


async def run_bench(settings: Settings, options: BenchOptions) -> BenchResult:
    """Run every phase; raises StreamMonitorError on a stuck run."""
    group = f"bench-{uuid.uuid4().hex[:8]}"  # every topic of the run starts with it
    topics = {
        "predictions": f"{group}-predictions",
        "labels": f"{group}-labels",
        "alerts": f"{group}-alerts",
        "partitions": str(options.partitions),
    }
    result = BenchResult(options={**asdict(options), "file": str(options.file or "")})
    admin = AIOKafkaAdminClient(**client_kwargs(settings.kafka))
    await admin.start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        await admin.create_topics(
            [
                NewTopic(topics["predictions"], options.partitions, 1),
                NewTopic(topics["labels"], options.partitions, 1),
            ]
        )
        values = _events(options)
        result.loaded, seconds = await produce(settings, topics["predictions"], values)
        result.load_rate = round(result.loaded / seconds, 1)
        if options.compare:
            result.raw_consume_rate = round(
                await raw_consume(settings, topics["predictions"], result.loaded, decode=False), 1
            )
            result.raw_decode_rate = round(
                await raw_consume(settings, topics["predictions"], result.loaded, decode=True), 1
            )
            result.core_rate = round(
                await asyncio.to_thread(
                    core_rate,
                    settings,
                    values[: min(len(values), 200_000)],
                    _model_spec(options),
                    25 * options.models * options.window_events,
                ),
                1,
            )
            if options.faust:
                result.faust_rate = await _faust_rate(
                    settings, options, topics, result.loaded, admin
                )
        env = _worker_env(settings, group, topics, options)
        started = time.monotonic()
        processes += [
            subprocess.Popen(  # noqa: ASYNC220 - long-lived workers, started once
                [sys.executable, "-m", "stream_monitor", "run"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(options.workers)
        ]
        first: tuple[float, int] | None = None
        done = 0
        moved = started
        while done < result.loaded:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            if now - started > options.timeout:
                raise StreamMonitorError(
                    f"the workers processed {done} of {result.loaded} events in "
                    f"{options.timeout:.0f} s; giving up"
                )
            for process in processes:
                if process.poll() is not None:
                    raise StreamMonitorError(f"a worker exited with code {process.returncode}")
            before, done = done, await _group_progress(admin, group, topics["predictions"])
            if done > before:
                moved = now  # when the committed progress last moved
            result.lag.append((round(now - started, 1), result.loaded - done))
            result.rss_mb.append((round(now - started, 1), _rss_mb([p.pid for p in processes])))
            if first is None and done > 0:
                first = (now, done)
        assert first is not None  # noqa: S101 - the loop ran at least once with progress
        if first[1] * 2 <= done:  # from the first committed progress to the last
            result.monitor_seconds = round(moved - first[0], 2)
            result.monitor_rate = round((done - first[1]) / max(result.monitor_seconds, 1e-9), 1)
        else:  # most of it in the first commit (a small run): since the workers started,
            # start-up included (the few events of a last commit say nothing of the rate)
            result.monitor_seconds = round(moved - started, 2)
            result.monitor_rate = round(done / max(result.monitor_seconds, 1e-9), 1)
        await _latency_phase(settings, options, topics, result, f"{group}-metrics")
    finally:
        await _finish(processes, admin, None if options.keep_topics else f"{group}-")
    return result


async def _finish(
    processes: list[subprocess.Popen[bytes]], admin: AIOKafkaAdminClient, drop: str | None
) -> None:
    """Stop the workers, then delete the topics whose names start with ``drop`` (the run's
    inputs, outputs, state and the Faust peer's): a broker that keeps every run's gigabytes of
    logs gets slower from run to run, and later runs would measure its memory, not the monitor."""
    _terminate(processes)
    try:
        if drop is not None:
            names = [name for name in await admin.list_topics() if name.startswith(drop)]
            if names:
                await admin.delete_topics(names)
    finally:
        await admin.close()


def _terminate(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (graceful), then SIGKILL after 30 s."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


async def _latency_phase(
    settings: Settings,
    options: BenchOptions,
    topics: dict[str, str],
    result: BenchResult,
    metrics: str,
) -> None:
    rate = max(100.0, result.monitor_rate * options.latency_fraction)
    count = int(rate * options.latency_seconds)
    result.latency_rate = round(rate, 1)
    stop = threading.Event()
    figures: list[tuple[list[float], list[float]]] = []
    # The reader has a thread and an event loop of its own, so the load generator below never
    # delays the moment an output is seen.
    reader = threading.Thread(
        target=lambda: figures.append(
            asyncio.run(
                _read_latencies(
                    settings,
                    topics["alerts"],
                    metrics,
                    stop,
                    committed=options.guarantee == "exactly_once",
                )
            )
        ),
        name="latency-reader",
        daemon=True,
    )
    reader.start()
    await asyncio.sleep(2)  # the reader is at the end of both topics
    # Events are made beforehand and stamped with the time they are sent.
    stamp = b'"timestamp":' + str(_PLACEHOLDER).encode()
    models = options.models
    calm = reference_events(_TEMPLATES, start=result.loaded, models=models, timestamp=_PLACEHOLDER)
    shifted = reference_events(
        _TEMPLATES, start=result.loaded, models=models, shift=3.0, timestamp=_PLACEHOLDER
    )

    def stamped(i: int) -> bytes:
        template = (shifted if i >= count // 4 else calm)[i % _TEMPLATES]
        now = b'"timestamp":' + str(time.time_ns() // 1_000_000).encode()
        return template.replace(stamp, now)

    await produce_paced(settings, topics["predictions"], stamped, count, rate)
    await asyncio.sleep(5)  # the last windows close and publish
    stop.set()
    await asyncio.to_thread(reader.join, 30)
    alert_ms, summary_ms = figures[0] if figures else ([], [])
    result.alert_latency_ms = percentiles(alert_ms)
    result.summary_latency_ms = percentiles(summary_ms)


_PLACEHOLDER = 1_000_000_000_000  # a 13-digit time, replaced by the send time
_TEMPLATES = 20_000


def table(result: BenchResult) -> list[tuple[str, str]]:
    """Rows of the printed table."""
    rows = [
        ("events loaded", f"{result.loaded:,} ({result.load_rate:,.0f}/s)"),
        (
            f"monitor, {result.options['workers']} worker(s), {result.options['guarantee']}",
            f"{result.monitor_rate:,.0f} events/s over {result.monitor_seconds} s",
        ),
    ]
    if result.raw_consume_rate:
        rows.append(("raw aiokafka consume-only", f"{result.raw_consume_rate:,.0f} events/s"))
    if result.raw_decode_rate:
        rows.append(
            ("raw aiokafka consume + orjson.loads", f"{result.raw_decode_rate:,.0f} events/s")
        )
    if result.core_rate:
        rows.append(("in-memory core alone", f"{result.core_rate:,.0f} events/s"))
    if result.faust_rate:
        rows.append(("faust-streaming agents (adapter)", f"{result.faust_rate:,.0f} events/s"))
    for name, value in result.ratios().items():
        if value is not None:
            rows.append((name, f"{value}"))
    rss = [mb for _, mb in result.rss_mb if mb > 0]
    if rss:
        rows.append(("worker RSS (first, max, last)", f"{rss[0]} / {max(rss)} / {rss[-1]} MB"))
    rows.append(("max lag", f"{max((lag for _, lag in result.lag), default=0):,}"))
    for name, figures in (
        ("alert latency", result.alert_latency_ms),
        ("window summary latency", result.summary_latency_ms),
    ):
        rows.append(
            (
                f"{name} at {result.latency_rate:,.0f} events/s",
                f"p50 {figures.get('p50')} / p95 {figures.get('p95')} / p99 {figures.get('p99')} "
                f"ms (n={figures.get('n')})",
            )
        )
    if result.rss_mb and len(rss) > 4:
        drift = (rss[-1] - statistics.median(rss[: len(rss) // 4])) / rss[-1] * 100
        rows.append(("RSS change, first quarter median to end", f"{drift:+.1f}%"))
    return rows
