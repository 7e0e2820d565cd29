"""Detection-quality benchmark: known change points in, detection delay and false alerts out.

    .venv/bin/python -m benchmarks.detection            # all scenarios, records docs/benchmarks.md
    .venv/bin/python -m benchmarks.detection --quick    # smaller stationary control

Every scenario streams 20 numeric features (plus 2 categorical where relevant) through one
``ModelMonitor`` at default settings (count windows of 1,000 events, warm-up 1,000). An alert is a
*true* detection when it fires on the changed signal after the change point; any other firing
alert is a *false* alert. Delay is in events from the change point to the event that closed the
window (or fed the detector) that raised the first true alert.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import orjson

from benchmarks import shapes
from benchmarks.record import machine, record
from benchmarks.streams import (
    VERSION,
    Row,
    champion_rows,
    concept_rows,
    correlation_rows,
    friedman_rows,
    gaussian_rows,
    segment_rows,
    silent_accuracy_rows,
    slight_fall_rows,
)
from stream_monitor._native import decode_batch
from stream_monitor.config.models import ModelSpec
from stream_monitor.events import AlertEvent
from stream_monitor.monitor import ModelMonitor

T0 = 1_795_800_000_000
WINDOW = 1_000
BATCH = 2_000  # events per update_batch, as processing.batch_max_records


@dataclass
class Scenario:
    name: str
    rows: Callable[[int], Iterator[Row]]  # seed -> rows
    events: int
    change_at: int | None  # None: stationary control
    target: Callable[[AlertEvent], bool]  # is this alert about the change?
    goal_windows: float | None  # detection target in windows of 1,000 events
    # Alerts about the change that are not what the scenario asks for (a global alert on a
    # feature whose shift is in one segment): neither a detection nor a false alert.
    related: Callable[[AlertEvent], bool] = lambda a: False


def on(feature: str | None, kinds: tuple[str, ...] | None = None) -> Callable[[AlertEvent], bool]:
    """Alerts about ``feature`` (any kind unless ``kinds`` is given)."""
    return lambda a: (
        (kinds is None or a.kind in kinds) and (feature is None or a.feature == feature)
    )


def joint(alert: AlertEvent) -> bool:
    """A multivariate drift alert (the window's test, or the detector on each event's
    reconstruction error): about the change wherever a numeric feature's distribution changes
    (its variance, or a mean within a window, moves the covariances too)."""
    return alert.rule == "drift.multivariate" or alert.feature == "__joint__"


def scenarios(stationary_events: int) -> list[Scenario]:
    c = 5_500  # change point: the middle of window 5
    n = 15_000
    ramp = 2_000
    return [
        Scenario(
            "abrupt mean shift 0.5 sd, 1 of 20 features",
            lambda s: gaussian_rows(s, n, mean=lambda i, j: 0.5 if j == 0 and i >= c else 0.0),
            n,
            c,
            on("x0"),
            2,
            joint,
        ),
        Scenario(
            "abrupt mean shift 0.5 sd, 5 of 20 features",
            lambda s: gaussian_rows(s, n, mean=lambda i, j: 0.5 if j < 5 and i >= c else 0.0),
            n,
            c,
            lambda a: a.feature in {f"x{j}" for j in range(5)},
            2,
            joint,
        ),
        Scenario(
            "abrupt variance shift sd 1 -> 1.5, 1 feature",
            lambda s: gaussian_rows(s, n, sd=lambda i, j: 1.5 if j == 0 and i >= c else 1.0),
            n,
            c,
            on("x0"),
            2,
            joint,
        ),
        Scenario(
            f"gradual mean shift to 1 sd over {ramp} events, 1 feature",
            lambda s: gaussian_rows(
                s, n, mean=lambda i, j: min(max(i - c, 0) / ramp, 1.0) if j == 0 else 0.0
            ),
            n,
            c,
            on("x0"),
            5,
            joint,
        ),
        Scenario(
            f"gradual variance shift to sd 2 over {ramp} events, 1 feature",
            lambda s: gaussian_rows(
                s, n, sd=lambda i, j: 1 + min(max(i - c, 0) / ramp, 1.0) if j == 0 else 1.0
            ),
            n,
            c,
            on("x0"),
            5,
            joint,
        ),
        Scenario(
            "categorical frequency shift (4:3:2:1 -> 1:2:3:4)",
            lambda s: gaussian_rows(
                s, n, categorical=lambda i: (1, 2, 3, 4) if i >= c else (4, 3, 2, 1)
            ),
            n,
            c,
            on("c0"),
            2,
        ),
        Scenario(
            "missing-value spike (30% in one feature)",
            lambda s: gaussian_rows(s, n, missing=lambda i, j: 0.3 if j == 3 and i >= c else 0),
            n,
            c,
            on("x3", ("data_quality",)),
            2,
        ),
        Scenario(
            "prediction-score shift (+0.1)",
            lambda s: gaussian_rows(s, n, score_shift=lambda i: 0.1 if i >= c else 0.0),
            n,
            c,
            on(None, ("prediction_drift", "performance", "concept_drift")),
            2,
        ),
        # What the presets miss (the analytics issue): each alert must name where the change is.
        Scenario(
            "segment-only shift: x0 + 1 sd where c0 = d (7% of events)",
            lambda s: segment_rows(s, n, c),
            n,
            c,
            lambda a: a.feature == "x0" and "segment" in a.labels,
            2,
            lambda a: on("x0")(a) or joint(a),
        ),
        Scenario(
            "correlation change: x1 = 0.9 x0 + noise, marginals unchanged",
            lambda s: correlation_rows(s, n, c),
            n,
            c,
            joint,
            2,
            lambda a: a.feature in {"x0", "x1"},
        ),
        Scenario(
            "champion/challenger: v2 (half the traffic) right 80% -> 65%, labels inline",
            lambda s: champion_rows(s, n, c),
            n,
            c,
            lambda a: a.rule == "compare.performance" and a.segment == "model_version=v2",
            2,
            lambda a: a.kind in ("performance", "concept_drift"),
        ),
        Scenario(
            "labels stop while accuracy falls 0.8 -> 0.6",
            lambda s: silent_accuracy_rows(s, n, c),
            n,
            c,
            lambda a: a.rule == "estimated_performance",
            2,
            lambda a: a.feature in {"x0", None} or a.kind in ("prediction_drift", "performance"),
        ),
        Scenario(
            "labels stop while accuracy falls 0.72 -> 0.69",
            lambda s: slight_fall_rows(s, n, c),
            n,
            c,
            lambda a: a.rule == "estimated_performance",
            2,
            lambda a: a.kind in ("prediction_drift", "performance"),
        ),
        Scenario(
            "concept drift: Agrawal f0 -> f2 (river), frozen GaussianNB, labels inline",
            lambda s: concept_rows(s, n, c),
            n,
            c,
            on(None, ("prediction_drift", "drift", "performance", "concept_drift")),
            None,
        ),
        Scenario(
            "concept drift: FriedmanDrift gra (river), labels inline",
            lambda s: friedman_rows(s, n, c),
            n,
            c,
            on(None, ("prediction_drift", "drift", "performance", "concept_drift")),
            None,
        ),
        Scenario(
            f"stationary control ({stationary_events:,} events)",
            lambda s: gaussian_rows(s, stationary_events),
            stationary_events,
            None,
            lambda a: False,
            None,
        ),
        *shape_scenarios(stationary_events),
    ]


def unlabelled_after(rows: Iterator[Row], labelled: int) -> Iterator[Row]:
    """Labels only on the first ``labelled`` events (the reference's): every later window is
    judged by the estimated-performance rule."""
    for i, (features, score, prediction, label) in enumerate(rows):
        yield features, score, prediction, label if i < labelled else None


def moves_score(alert: AlertEvent) -> bool:
    """Related to a change of a feature the classifier's score depends on."""
    return joint(alert) or alert.kind in ("prediction_drift", "performance", "concept_drift")


# Each shape, shifted from the change on: (what, the shift, the feature, whether the score
# moves with it). Every shape gets a shift of its scale or location and one of a mixture's
# weights (a component of other values mixed in, or the weights of its own), each sized to
# move the feature's normal scores by at least 0.2 of their sd (the Gaussian scenarios move
# them by 0.5): smaller ones are in docs/benchmarks.md's text.
SHAPE_SHIFTS: tuple[tuple[str, shapes.Shift, str, bool], ...] = (
    ("log-normal feature scaled x1.3", shapes.scale_shift("lognormal", 1.3), "lognormal", False),
    (
        "log-normal: 30% of values x3 mixed in",
        shapes.mixed_in(0.3, shapes.scale_shift("lognormal", 3.0)),
        "lognormal",
        False,
    ),
    ("Pareto feature scaled x1.5", shapes.scale_shift("pareto", 1.5), "pareto", False),
    (
        "Pareto: 15% of values x3 mixed in",
        shapes.mixed_in(0.15, shapes.scale_shift("pareto", 3.0)),
        "pareto",
        False,
    ),
    ("zero-inflated spend, zeros 70% -> 55%", shapes.fewer_zeros, "spend", True),
    ("zero-inflated spend, amounts x4", shapes.scale_shift("spend", 4.0), "spend", True),
    ("Poisson count + 1", shapes.add_shift("count", 1), "count", True),
    (
        "Poisson count: 30% zeros mixed in",
        shapes.mixed_in(0.3, shapes.scale_shift("count", 0)),
        "count",
        True,
    ),
    ("int-coded category, weights reversed", shapes.recoded, "code", True),
    ("int-coded category, codes + 1", shapes.add_shift("code", 1), "code", True),
    ("bimodal mixture weights 40:60 -> 60:40", shapes.mixture_shift, "bimodal", True),
    ("bimodal, both modes + 0.5", shapes.add_shift("bimodal", 0.5), "bimodal", True),
    ("near-constant, 95% -> 80% at its value", shapes.less_constant, "constant", False),
    ("near-constant, its constant 1.0 -> 1.5", shapes.moved_atom, "constant", False),
    (
        "the non-linear pair, pair_x + 0.5 (its dependent unchanged)",
        shapes.add_shift("pair_x", 0.5),
        "pair_x",
        False,
    ),
    (
        "the non-linear pair: 15% of pair_x + 2 mixed in",
        shapes.mixed_in(0.15, shapes.add_shift("pair_x", 2.0)),
        "pair_x",
        False,
    ),
)


def shape_scenarios(stationary_events: int) -> list[Scenario]:
    """The shapes production features have (``benchmarks/shapes.py``): stationary controls,
    and shifts of a scale, a mean and a mixture's weights."""
    c, n = 5_500, 15_000
    return [
        Scenario(
            f"shapes: stationary control ({stationary_events:,} events)",
            lambda s: shapes.shaped_rows(s, stationary_events),
            stationary_events,
            None,
            lambda a: False,
            None,
        ),
        Scenario(
            f"shapes, labels stop after the reference: stationary ({stationary_events:,})",
            lambda s: unlabelled_after(shapes.shaped_rows(s, stationary_events), 2_000),
            stationary_events,
            None,
            lambda a: False,
            None,
        ),
        Scenario(
            f"Shuttle (river's real data set), rows at random: stationary ({stationary_events:,})",
            lambda s: shapes.shuttle_rows(s, stationary_events),
            stationary_events,
            None,
            lambda a: False,
            None,
        ),
        *(
            Scenario(
                f"shapes: {name}",
                lambda s, shift=shift: shapes.shaped_rows(s, n, c, shift),
                n,
                c,
                on(feature),
                2,
                moves_score if moves else joint,
            )
            for name, shift, feature, moves in SHAPE_SHIFTS
        ),
        Scenario(
            "shapes: the non-linear pair decoupled, marginals unchanged (not monotone: unseen)",
            lambda s: shapes.shaped_rows(s, n, c, shapes.decoupled),
            n,
            c,
            joint,
            None,
            lambda a: a.feature in {"pair_x", "pair_y"},
        ),
        Scenario(
            "Shuttle: rare classes 3x as frequent (mixture)",
            lambda s: shapes.shuttle_rows(s, n, c, rare_class_weight=3.0),
            n,
            c,
            lambda a: a.kind == "drift" and a.feature is not None,
            2,
            moves_score,
        ),
        Scenario(
            "Shuttle: f1 + 10 (a mean shift of about 0.8 sd)",
            lambda s: shapes.shuttle_rows(s, n, c, shapes.add_shift("f1", 10.0)),
            n,
            c,
            on("f1"),
            2,
            moves_score,
        ),
    ]


@dataclass
class Result:
    detected: bool
    delay: int | None
    false_alerts: int
    events: int
    seconds: float


# Everything on: the defaults (multivariate drift, estimation, the compare rule) and segments,
# by a categorical feature and the model version (a segment's warm-up: 300 of its events).
EVERYTHING = {"segments": {"by": ["c0", "model_version"], "warmup_events": 300}}


def run(scenario: Scenario, seed: int) -> Result:
    if "Friedman" in scenario.name:  # MAE of the pre-drift function is about 0.8
        spec = ModelSpec.model_validate(
            {
                **EVERYTHING,
                "task": "regression",
                "performance": {"metric": "mae", "warning_drop": 1.0, "critical_drop": 2.0},
            }
        )
    else:
        spec = ModelSpec.model_validate(EVERYTHING)
    monitor = ModelMonitor("bench", spec)
    first_true: int | None = None
    false_alerts = 0
    started = time.perf_counter()

    def feed(batch: list[bytes]) -> None:
        nonlocal first_true, false_alerts
        for output in monitor.update_native(decode_batch(batch), list(range(len(batch)))):
            if not isinstance(output, AlertEvent) or output.status != "firing":
                continue
            # the event that raised it: a detector's event, or the last event of the window
            at = output.evidence.get("event_time")
            at = output.window_end if not isinstance(at, int) or at < 0 else at
            raised = (at - T0) // 10
            after = scenario.change_at is not None and raised >= scenario.change_at
            if after and scenario.target(output):
                if first_true is None:
                    first_true = raised
            elif not (after and scenario.related(output)):
                false_alerts += 1

    batch: list[bytes] = []
    for i, (features, score, prediction, label) in enumerate(scenario.rows(seed)):
        event = {
            "event_id": str(i),
            "model_id": "bench",
            "timestamp": T0 + i * 10,
            "features": features,
            "prediction": prediction,
        }
        if VERSION in features:
            event["model_version"] = features.pop(VERSION)
        if score is not None:
            event["score"] = score
        if label is not None:
            event["label"] = label
        batch.append(orjson.dumps(event))
        if len(batch) == BATCH:
            feed(batch)
            batch = []
    feed(batch)
    seconds = time.perf_counter() - started
    delay = (
        None
        if first_true is None or scenario.change_at is None
        else (first_true - scenario.change_at)
    )
    return Result(first_true is not None, delay, false_alerts, scenario.events, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="Runs per scenario.")
    parser.add_argument("--stationary-events", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="200,000 stationary events.")
    parser.add_argument("--no-record", action="store_true", help="Do not write docs/benchmarks.md.")
    args = parser.parse_args()
    stationary = 200_000 if args.quick else args.stationary_events
    lines = [
        "| Scenario | Detected | Delay (events, per seed) | Target | False alerts | Events/s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for scenario in scenarios(stationary):
        seeds = 1 if scenario.change_at is None else args.seeds
        results = [run(scenario, seed) for seed in range(1, seeds + 1)]
        detected = sum(r.detected for r in results)
        delays = ", ".join("-" if r.delay is None else f"{r.delay:,}" for r in results)
        target = (
            f"<= {scenario.goal_windows:g} windows ({scenario.goal_windows * WINDOW:,.0f})"
            if scenario.goal_windows
            else "-"
        )
        if scenario.change_at is None:
            total_events = sum(r.events for r in results)
            false_rate = sum(r.false_alerts for r in results) / total_events * 1_000_000
            false_text = f"{sum(r.false_alerts for r in results)} ({false_rate:.2f} per 1M)"
            detected_text = "n/a"
            target = "<= 1 false alert per 1M"
        else:
            false_text = str(sum(r.false_alerts for r in results))
            detected_text = f"{detected}/{len(results)}"
        rate = sum(r.events for r in results) / sum(r.seconds for r in results)
        line = (
            f"| {scenario.name} | {detected_text} | {delays} | {target} | {false_text} "
            f"| {rate:,.0f} |"
        )
        lines.append(line)
        print(line, flush=True)
    body = "\n".join(
        [
            f"Measured on: {machine()}.",
            f"Command: `.venv/bin/python -m benchmarks.detection --seeds {args.seeds}"
            f"{' --quick' if args.quick else ''}` (stationary control: {stationary:,} events).",
            "",
            *lines,
        ]
    )
    if not args.no_record:
        record("detection", body)


if __name__ == "__main__":
    main()
