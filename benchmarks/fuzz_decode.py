"""Fuzz the native decoder against the schema with atheris (coverage-guided, raw bytes).

For every input: the codec, read as a prediction and as a label event, raises nothing but
``EventValidationError``, and an event the native decoder accepts is accepted by the schema with
the same values and types. A disagreement or any
other exception stops the run with the input that caused it. Prints the figures and, with
``--record``, writes them to docs/benchmarks.md.

    python -m benchmarks.fuzz_decode --seconds 600 --record
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports():
    from stream_monitor.events import EventCodec, PredictionEvent

from benchmarks.record import machine, record
from stream_monitor._native import decode_predictions
from stream_monitor.devtools.bench.workload import reference_events
from stream_monitor.errors import EventValidationError

CODEC = EventCodec()
FIELDS = [
    name for name in PredictionEvent.model_fields if name not in ("metadata", "schema_version")
]
COUNTS = {"inputs": 0, "native": 0, "schema": 0, "labels": 0}
STOP: list[Any] = []  # (deadline, report) once the run is set up


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return (type(value).__name__, value)


def one_input(data: bytes) -> None:
    """The property, for one input."""
    COUNTS["inputs"] += 1
    if STOP and COUNTS["inputs"] % 4096 == 0 and time.monotonic() >= STOP[0]:
        STOP[1]()
        os._exit(0)  # atheris has no way back from Fuzz()
    try:
        CODEC.decode_label(data)
        COUNTS["labels"] += 1
    except EventValidationError:
        pass
    [native] = decode_predictions([data])
    try:
        event = CODEC.decode_prediction(data)
    except EventValidationError:
        event = None
    if event is not None:
        COUNTS["schema"] += 1
    if native is None:
        return
    COUNTS["native"] += 1
    if event is None:
        raise AssertionError(f"native accepted what the schema refuses: {data!r}")
    expected = {name: _typed(getattr(event, name)) for name in FIELDS}
    expected["non_finite_features"] = list(event.non_finite_features)
    got = {k: (_typed(v) if k != "non_finite_features" else v) for k, v in native.items()}
    if got != expected:
        raise AssertionError(f"native and schema read differently: {data!r}")


def seeds(folder: Path) -> None:
    """A corpus of valid events, a few with NaN features, escapes and every optional field."""
    events = reference_events(40, models=3)
    events.append(
        b'{"event_id":"\\u00e9\\ud83d\\ude00","model_id":"m","model_version":"v1",'
        b'"timestamp":1795800000000,"features":{"x":NaN,"y":-Infinity,"z":"a\\nb","n":null},'
        b'"prediction":"yes","scores":{"yes":0.7,"no":0.3},"label":"no","latency_ms":0}'
    )
    events.append(
        b'{"event_id":"e1","model_id":"m","timestamp":1795800000000,"label":1}',
    )
    for i, event in enumerate(events):
        (folder / f"seed-{i}").write_bytes(event)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--record", action="store_true", help="write docs/benchmarks.md")
    args = parser.parse_args()
    corpus = Path(tempfile.mkdtemp(prefix="fuzz-decode-"))
    seeds(corpus)
    seeded = len(list(corpus.iterdir()))
    started = time.monotonic()

    def report() -> None:
        elapsed = time.monotonic() - started
        line = (
            f"{COUNTS['inputs']:,} inputs in {elapsed:,.0f} s: {COUNTS['schema']:,} accepted by "
            f"the schema, {COUNTS['native']:,} by the native decoder, {COUNTS['labels']:,} as "
            "label events, 0 disagreements, 0 crashes, no exception but the validation error"
        )
        print(line, flush=True)
        if args.record:
            record(
                "fuzz-decode",
                f"Measured on: {machine()}.\n"
                f"Command: `.venv/bin/python -m benchmarks.fuzz_decode --seconds {args.seconds}"
                f" --record` (atheris, seeded with {seeded} events; the corpus grew by "
                f"{len(list(corpus.iterdir())) - seeded} inputs).\n\n"
                f"{line}.",
            )

    STOP[:] = [started + args.seconds, report]
    flags = [sys.argv[0], "-max_len=2048", f"-artifact_prefix={corpus}/", str(corpus)]
    atheris.Setup(flags, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
