#!/usr/bin/env bash
# Build the abi3 wheel and the sdist with maturin, install the wheel into a clean venv (no
# source tree on the path) and run `stream-monitor backtest` on a small file with it.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

.venv/bin/maturin build --release --out "$work/dist" --quiet
.venv/bin/maturin sdist -m native/Cargo.toml --out "$work/dist" >/dev/null
wheel=$(ls "$work"/dist/*.whl)
case "$wheel" in
    *-abi3-*) ;;
    *) echo "error: $wheel is not an abi3 wheel" >&2; exit 1 ;;
esac
sdist=$(ls "$work"/dist/*.tar.gz)
# The sdist must hold everything a build needs: build a wheel from it alone.
PATH="$PWD/.venv/bin:$PATH" .venv/bin/python -m pip wheel --quiet --no-deps --no-build-isolation \
    "$sdist" -w "$work/from-sdist"

$PYTHON -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$wheel"
cd "$work"  # away from the source tree: only the installed wheel can be imported
"$work/venv/bin/python" - <<'PY'
from pathlib import Path

import stream_monitor._native as native
from stream_monitor.devtools.bench.workload import reference_events

assert "site-packages" in native.__file__, native.__file__
events = reference_events(30_000, models=2, start=0) + reference_events(
    10_000, models=2, start=30_000, shift=3.0
)
Path("events.jsonl").write_bytes(b"\n".join(events) + b"\n")
PY
"$work/venv/bin/stream-monitor" backtest events.jsonl --alerts alerts.jsonl 2>backtest.txt
grep -q '"drift' alerts.jsonl || { echo "error: the backtest raised no drift alert" >&2; exit 1; }
echo "wheel check: $(basename "$wheel") and $(basename "$sdist") built; backtest with the wheel gave" \
    "$(wc -l <alerts.jsonl) alerts"
