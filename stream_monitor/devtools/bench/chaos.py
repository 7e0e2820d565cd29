"""A chaos run on a real broker: outputs under kills, rebalances, a broker restart and a failing
sink, compared with ``backtest`` of the same input.

1. Input (seeded): predictions of ``models`` models, most of them labelled later by a label event
   on the labels topic, a feature shift for some models and an accuracy drop for others part way,
   and malformed records on both topics. Every record's timestamp is its event time; the same
   records in timestamp order are the backtest's file.
2. The records are produced into fresh topics (in timestamp order, paced so the run lasts a while)
   while a seeded schedule starts one to three ``stream-monitor run`` processes, kills them with
   SIGKILL or SIGTERM (some in their first seconds, some while another has just joined, that is
   during a rebalance), restarts the broker once (the producer holds still meanwhile), and makes
   the webhook sink's endpoint fail, then stall, for a while.
3. Once everything is committed, the outputs are read back and compared with ``backtest`` of the
   file (without its end-of-file flush, which a worker never does): alert ids missing and
   unexpected, final window summaries (each window's latest revision) missing, unexpected or
   different, alert ids seen twice on a ``read_committed`` reader (exactly_once), and dead letters
   against the malformed records produced (by topic, partition and offset).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import signal
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from stream_monitor.config import load_settings
from stream_monitor.config.settings import Settings
from stream_monitor.devtools.bench.cluster import (
    Webhook,
    Workers,
    committed_all,
    create_inputs,
    produce,
    read_topic,
)
from stream_monitor.devtools.broker import BrokerInfo, restart, running_brokers
from stream_monitor.offline.backtest import run_backtest
from stream_monitor.runtime.topics import ensure_topics

__all__ = ["ChaosOptions", "ChaosReport", "run_chaos"]

T0 = 1_795_800_000_000
STEP_MS = 10  # event time between two predictions


@dataclass(frozen=True)
class ChaosOptions:
    """What to generate and how hard to shake it."""

    seed: int = 1
    events: int = 2_000_000  # predictions
    models: int = 20
    partitions: int = 6
    guarantee: str = "at_least_once"
    label_share: float = 0.7  # predictions labelled later by a label event
    label_delay_ms: int = 30_000
    malformed_every: int = 10_000
    window_events: int = 1_000
    produce_rate: float = 40_000.0  # records/s while the schedule runs
    max_workers: int = 3
    broker_down: float = 5.0
    settle_timeout: float = 900.0
    log_level: str = "WARNING"  # the workers'


@dataclass
class ChaosReport:
    """The figures of one chaos run; every count but the totals must be 0."""

    options: ChaosOptions
    schedule: list[tuple[float, str]] = field(default_factory=list)
    records: int = 0
    predictions: int = 0
    labels: int = 0
    malformed: int = 0
    expected_alerts: int = 0
    expected_windows: int = 0
    missing_alerts: int = 0
    unexpected_alerts: int = 0
    duplicate_alerts: int = 0  # ids read more than once (counted under exactly_once only)
    missing_windows: int = 0
    unexpected_windows: int = 0
    differing_windows: int = 0
    dead_letters: int = 0  # distinct source records dead-lettered
    missing_dead_letters: int = 0
    unexpected_dead_letters: int = 0
    crashes: int = 0  # workers that exited without being told to
    unclean_stops: int = 0  # workers SIGTERMed at the end that did not exit with code 0
    kills: Counter[str] = field(default_factory=Counter)
    webhook_requests: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    examples: list[str] = field(default_factory=list)

    @property
    def failures(self) -> int:
        """The sum of every figure that must be 0."""
        return (
            self.missing_alerts
            + self.unexpected_alerts
            + self.duplicate_alerts
            + self.missing_windows
            + self.unexpected_windows
            + self.differing_windows
            + self.missing_dead_letters
            + self.unexpected_dead_letters
            + self.crashes
            + self.unclean_stops
        )


# -- input ------------------------------------------------------------------------------------


def generate(options: ChaosOptions) -> list[tuple[int, int, str, bytes, bytes]]:
    """(timestamp, order, kind, key, value) in timestamp order (a prediction before a label and a
    label before a malformed record of the same millisecond); kind: prediction, label or bad-*."""
    rng = random.Random(options.seed)  # noqa: S311 - synthetic data
    out: list[tuple[int, int, str, bytes, bytes]] = []
    labels: list[tuple[int, int, str, bytes, bytes]] = []  # a heap: due label events
    shifted = set(range(0, options.models, 5))  # every fifth model: a feature shifts
    worse = set(range(1, options.models, 5))  # the one after: its accuracy drops
    change_at = options.events * 2 // 5
    for i in range(options.events):
        at = T0 + i * STEP_MS
        while labels and labels[0][0] <= at:
            out.append(heapq.heappop(labels))
        m = i % options.models
        model = f"model-{m:02d}"
        key = model.encode()
        later = i >= change_at
        features = {
            "x0": rng.gauss(1.0 if later and m in shifted else 0.0, 1.0),
            "x1": rng.gauss(0.0, 1.0),
            "x2": rng.expovariate(1.0),
            "channel": rng.choice(("web", "app", "phone")),
        }
        score = rng.random()
        prediction = int(score > 0.5)
        wrong = rng.random() < (0.45 if later and m in worse else 0.1)
        truth = 1 - prediction if wrong else prediction
        event = {
            "event_id": f"e{i}",
            "model_id": model,
            "timestamp": at,
            "features": features,
            "prediction": prediction,
            "score": round(score, 6),
        }
        out.append((at, 0, "prediction", key, orjson.dumps(event)))
        if rng.random() < options.label_share:
            label = {"event_id": f"e{i}", "model_id": model, "timestamp": at, "label": truth}
            due = at + options.label_delay_ms
            label["timestamp"] = due
            heapq.heappush(labels, (due, 1, "label", key, orjson.dumps(label)))
        if options.malformed_every and i % options.malformed_every == options.malformed_every - 1:
            kind = "bad-prediction" if rng.random() < 0.7 else "bad-label"
            junk = rng.choice((b'{"event_id": "x', b"not json", b'{"model_id": 7}', b"[]"))
            out.append((at, 2, kind, key, junk))
    out += sorted(labels)
    out.sort(key=lambda r: (r[0], r[1]))
    return out


def write_file(records: list[tuple[int, int, str, bytes, bytes]], path: Path) -> None:
    """The records' values, one per line, in timestamp order (the backtest's input)."""
    with path.open("wb") as out:
        for record in records:
            out.write(record[4].replace(b"\n", b" ") + b"\n")


# -- the system under test --------------------------------------------------------------------


def config_for(bootstrap: str, options: ChaosOptions, webhook: str) -> dict[str, Any]:
    """The workers' configuration (a file they are started with)."""
    tag = uuid.uuid4().hex[:8]
    return {
        "kafka": {"bootstrap_servers": bootstrap, "group_id": f"chaos-{tag}"},
        "topics": {
            "predictions": f"chaos-pred-{tag}",
            "labels": f"chaos-lab-{tag}",
            "alerts": f"chaos-alerts-{tag}",
            "partitions": options.partitions,
            "auto_create": True,
        },
        "processing": {
            "guarantee": options.guarantee,
            "checkpoint_interval": 1.0,
            "batch_max_records": 2_000,
            # Wait for a quiet input topic longer than the broker restart takes (its stop, the
            # time down, its start), so a topic the outage holds back is not taken for quiet.
            "max_task_idle": 4 * options.broker_down + 15,
        },
        "http": {"port": 0},
        "logging": {"level": options.log_level, "format": "json"},
        "monitoring": {
            "default": {
                "warmup_events": options.window_events,
                "window": {"kind": "count", "events": options.window_events},
                # Predictions never labelled wait 4 label delays of event time, not the default
                # day: the whole stream spans hours, and each checkpoint writes what waits.
                "performance": {
                    "reference_labels": 500,
                    "min_labels": 200,
                    "label_ttl": 4 * options.label_delay_ms / 1000,
                },
            }
        },
        "sinks": [
            {"type": "kafka"},
            {"type": "webhook", "url": webhook, "timeout": 1.0, "retries": 1, "backoff": 0.1},
        ],
    }


def final(summaries: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """Each window's latest revision, without its revision number (how many revisions a window
    went through may depend on how labels were batched; what it ends with may not)."""
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for s in summaries:
        key = (s["model_id"], s["window_index"])
        if key not in latest or s["revision"] >= latest[key]["revision"]:
            latest[key] = s
    return {key: {k: v for k, v in s.items() if k != "revision"} for key, s in latest.items()}


class _Run:
    """The moving parts of one chaos run and the schedule that shakes them."""

    def __init__(
        self, options: ChaosOptions, broker: BrokerInfo | None, folder: Path, report: ChaosReport
    ) -> None:
        self.options = options
        self.broker = broker
        self.folder = folder
        self.report = report
        self.rng = random.Random(options.seed + 1)  # noqa: S311 - a test schedule
        self.started = time.monotonic()
        self.webhook = Webhook()
        self.hold = asyncio.Event()
        self.hold.set()
        self.malformed: set[tuple[str, int, int]] = set()
        self.bag: list[str] = []

    def next_action(self) -> str:
        """The schedule's next step, dealt from a seeded bag: each kill kind once in a shuffled
        order, then a plain start, then a new bag. So even a short run kills from its first
        step, and a long one kills every way in every five steps."""
        if not self.bag:
            kills = [a for a in _ACTIONS if a != "start"]
            self.rng.shuffle(kills)
            self.bag = [*kills, "start"]
        return self.bag.pop(0)

    def note(self, action: str) -> None:
        self.report.schedule.append((round(time.monotonic() - self.started, 1), action))

    async def shake(self, workers: Workers, producing: asyncio.Task[None], seconds: float) -> None:
        """Until the input is produced: every few seconds, one step of the seeded schedule."""
        rng = self.rng
        restart_at = None if self.broker is None else seconds * rng.uniform(0.3, 0.6)
        webhook_at: float | None = seconds * rng.uniform(0.1, 0.4)
        workers.start()
        self.note("start worker")
        while not producing.done():
            await asyncio.wait({producing}, timeout=rng.uniform(1.5, 5.0))
            if producing.done():
                return
            self.report.crashes += workers.reap()
            now = time.monotonic() - self.started
            if restart_at is not None and now >= restart_at:
                restart_at = None
                await self.restart_broker()
            elif webhook_at is not None and now >= webhook_at:
                webhook_at = None
                self.trouble_webhook()
            else:
                await self.step(workers, self.next_action())

    async def restart_broker(self) -> None:
        assert self.broker is not None  # noqa: S101
        self.hold.clear()  # the producer finishes its chunk, then holds still
        await asyncio.sleep(1.0)
        down = self.options.broker_down
        self.note(f"restart the broker (down {down:.0f} s)")
        port = self.broker.port  # the process that runs it now (an earlier run restarted it)
        current = next((b for b in running_brokers() if b.port == port), self.broker)
        self.broker = await asyncio.to_thread(restart, current, down)
        self.hold.set()

    def trouble_webhook(self) -> None:
        """From the webhook's next request on (so alerts are flowing), fail for 8 s, then stall
        for 8 s."""
        self.webhook.mode = "armed"
        self.note("the webhook will fail for 8 s, then stall for 8 s, from its next request")

    async def step(self, workers: Workers, action: str) -> None:
        rng, kills = self.rng, self.report.kills
        running = len(workers.running)
        if not running or (action == "start" and running < self.options.max_workers):
            workers.start()
            self.note("start a worker")
        elif action == "kill":
            workers.signal(rng.randrange(running), signal.SIGKILL)
            kills["SIGKILL"] += 1
            self.note("SIGKILL a worker")
        elif action == "term":  # the group is left empty for a step when it was the only one
            workers.signal(rng.randrange(running), signal.SIGTERM)
            kills["SIGTERM"] += 1
            self.note("SIGTERM a worker")
        elif action == "kill-young":
            workers.start()
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            workers.signal(len(workers.running) - 1, signal.SIGKILL)
            kills["SIGKILL in its first seconds"] += 1
            self.note("start a worker, SIGKILL it in its first seconds")
        elif action == "kill-rebalancing":
            workers.start()  # its joining starts a rebalance of the group
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            workers.signal(rng.randrange(len(workers.running)), signal.SIGKILL)
            kills["SIGKILL during a rebalance"] += 1
            self.note("start a worker, SIGKILL one during the rebalance")

    async def settle(self, workers: Workers, settings: Settings) -> None:
        """One worker at least until the group has committed everything, then stop them all."""
        deadline = time.monotonic() + self.options.settle_timeout
        while not await committed_all(settings):
            if time.monotonic() > deadline:
                raise TimeoutError(f"not all committed in {self.options.settle_timeout} s")
            self.report.crashes += workers.reap()
            if not workers.running:
                workers.start()
                self.note("start a worker")
            await asyncio.sleep(1.0)
        self.note("everything committed")
        self.report.unclean_stops = workers.stop_all()
        self.note("workers stopped")


_ACTIONS = ("start", "kill", "term", "kill-young", "kill-rebalancing")


async def run_chaos(
    options: ChaosOptions, broker: BrokerInfo | None, bootstrap: str, workdir: Path | None = None
) -> ChaosReport:
    """One chaos run against the broker at ``bootstrap`` (``broker``: restartable, or None)."""
    report = ChaosReport(options)
    records = generate(options)
    kinds = Counter(kind for _, _, kind, _, _ in records)
    report.records = len(records)
    report.predictions, report.labels = kinds["prediction"], kinds["label"]
    report.malformed = kinds["bad-prediction"] + kinds["bad-label"]
    folder = workdir or Path(tempfile.mkdtemp(prefix="stream-monitor-chaos-"))
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    events_file = folder / "events.jsonl"
    await asyncio.to_thread(write_file, records, events_file)
    run = _Run(options, broker, folder, report)
    await run.webhook.start()
    config = config_for(bootstrap, options, run.webhook.url)
    await asyncio.to_thread((folder / "monitor.json").write_bytes, orjson.dumps(config))
    settings = load_settings(None, config)
    await create_inputs(settings)
    await ensure_topics(settings)
    workers = Workers(folder / "monitor.json", folder)
    producing = asyncio.create_task(
        produce(settings, records, options.produce_rate, run.hold, run.malformed)
    )
    try:
        await run.shake(workers, producing, len(records) / options.produce_rate)
        await producing
        run.note("input produced")
        await run.settle(workers, settings)
    finally:
        if not producing.done():
            producing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producing
        workers.stop_all()
        await run.webhook.stop()
    report.examples += workers.crashed
    report.webhook_requests = run.webhook.requests
    await compare(settings, events_file, run.malformed, report)
    report.seconds = round(time.monotonic() - run.started, 1)
    return report


async def compare(
    settings: Settings, events_file: Path, malformed: set[tuple[str, int, int]], report: ChaosReport
) -> None:
    """The figures: what the broker holds against what backtest gives for the same input."""
    want_alerts: set[str] = set()
    want_summaries: list[dict[str, Any]] = []
    await asyncio.to_thread(
        run_backtest,
        settings,
        events_file,
        lambda raw: want_alerts.add(orjson.loads(raw)["alert_id"]),
        lambda raw: want_summaries.append(orjson.loads(raw)),
        flush=False,
        max_errors=0,
    )
    bootstrap = settings.kafka.bootstrap_servers
    exactly_once = settings.processing.guarantee == "exactly_once"
    alert_records = await read_topic(bootstrap, settings.topics.alerts, committed=exactly_once)
    ids = [orjson.loads(r.value)["alert_id"] for r in alert_records]
    got_alerts = set(ids)
    summaries = await read_topic(bootstrap, settings.topics.metrics, committed=exactly_once)
    got = final([orjson.loads(r.value) for r in summaries])
    want = final(want_summaries)
    report.expected_alerts, report.expected_windows = len(want_alerts), len(want)
    report.missing_alerts = len(want_alerts - got_alerts)
    report.unexpected_alerts = len(got_alerts - want_alerts)
    if exactly_once:
        report.duplicate_alerts = len(ids) - len(got_alerts)
    report.missing_windows = len(want.keys() - got.keys())
    report.unexpected_windows = len(got.keys() - want.keys())
    differing = [key for key in want.keys() & got.keys() if want[key] != got[key]]
    report.differing_windows = len(differing)
    for key in sorted(differing)[:3]:
        fields = sorted(k for k in want[key] if want[key].get(k) != got[key].get(k))
        report.examples.append(f"window {key}: {', '.join(fields)} differ")
    dead = set()
    for record in await read_topic(bootstrap, settings.topics.dead_letters, committed=exactly_once):
        headers = {k: v.decode() for k, v in record.headers}
        dead.add(
            (
                headers["source.topic"],
                int(headers["source.partition"]),
                int(headers["source.offset"]),
            )
        )
    report.dead_letters = len(dead)
    report.missing_dead_letters = len(malformed - dead)
    report.unexpected_dead_letters = len(dead - malformed)
