# stream-monitor: the commands people and CI run. `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TEST_PORT ?= 19092
DEMO_PORT ?= 19192
export STREAM_MONITOR_TEST_BOOTSTRAP ?= 127.0.0.1:$(TEST_PORT)

# The compiled core (native/, Rust) is built into the package by maturin on install, and again
# whenever its sources change. Rust comes from rustup; cargo is looked up on PATH, then ~/.cargo/bin.
export PATH := $(PATH):$(HOME)/.cargo/bin
NATIVE := stream_monitor/_native.abi3.so
NATIVE_SRC := native/Cargo.toml $(wildcard native/Cargo.lock native/src/*.rs)
export PYO3_PYTHON ?= $(abspath $(BIN)/python)

.PHONY: help install lint format pytest native-check test demo docs bench chaos clean

help:
	@echo "make demo    run the demo on an embedded broker"
	@echo "make test    install, start a real Apache Kafka broker, lint and run all tests"
	@echo "make lint    ruff + mypy"
	@echo "make native-check  cargo fmt --check, clippy -D warnings and cargo test of native/"
	@echo "make docs    regenerate docs/configuration.md"
	@echo "make bench   run the benchmarks and record them in docs/benchmarks.md"
	@echo "make chaos   kill workers, restart the broker, fail a sink; compare with backtest"

$(STAMP): pyproject.toml
	@command -v cargo >/dev/null || { echo "error: cargo not found; install Rust (rustup) to build the native core" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,faust]'
	touch $(STAMP) $(NATIVE)

# Rebuild the extension in place after a change to the Rust sources.
$(NATIVE): $(STAMP) $(NATIVE_SRC)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(NATIVE)

install: $(STAMP) $(NATIVE)

native-check: install
	cd native && cargo fmt --check
	cd native && cargo clippy --quiet --all-targets -- -D warnings
	cd native && cargo clippy --quiet --all-targets --no-default-features -- -D warnings
	cd native && cargo test --quiet --no-default-features
	@# A short coverage-guided fuzz of the native decoder against the schema (the long run is
	@# `python -m benchmarks.fuzz_decode --seconds 600 --record`).
	@$(BIN)/python -m benchmarks.fuzz_decode --seconds 20 >.fuzz.log 2>&1 \
		|| { tail -30 .fuzz.log; echo "error: the native decoder fuzz failed" >&2; exit 1; }
	@tail -1 .fuzz.log && rm -f .fuzz.log

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Tests with line coverage of the package (fails under 85%, see pyproject.toml).
pytest: install
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest
	$(BIN)/coverage report

# The README's test command: a real broker is started for the run and stopped even on failure.
test: install
	@$(BIN)/stream-monitor broker stop --port $(TEST_PORT) >/dev/null 2>&1 || true
	$(BIN)/stream-monitor broker start --kind kafka --port $(TEST_PORT)
	@status=0; \
	$(MAKE) --no-print-directory lint native-check pytest || status=$$?; \
	$(BIN)/stream-monitor broker stop --port $(TEST_PORT); \
	exit $$status

# The main job on an embedded broker: simulator with drift, monitor, live alerts. Ctrl-C stops.
demo: install
	@$(BIN)/stream-monitor broker stop --port $(DEMO_PORT) >/dev/null 2>&1 || true
	$(BIN)/stream-monitor demo --port $(DEMO_PORT)

# Benchmarks print their figures and record them in docs/benchmarks.md. The end-to-end suite
# runs against a real Apache Kafka broker started for it (port BENCH_PORT).
BENCH_PORT ?= 19095
bench: install
	$(BIN)/python -m benchmarks.detection
	$(BIN)/python -m benchmarks.core_speed
	$(BIN)/python -m benchmarks.memory
	@$(BIN)/stream-monitor broker stop --port $(BENCH_PORT) >/dev/null 2>&1 || true
	$(BIN)/stream-monitor broker start --kind kafka --port $(BENCH_PORT)
	@status=0; \
	$(BIN)/python -m benchmarks.end_to_end --bootstrap 127.0.0.1:$(BENCH_PORT) || status=$$?; \
	$(BIN)/python -m benchmarks.replay_rate --bootstrap 127.0.0.1:$(BENCH_PORT) || status=$$?; \
	$(BIN)/stream-monitor broker stop --port $(BENCH_PORT); \
	exit $$status

# The chaos suite on a broker of its own (restarted mid-run): 2,000,000 events, both guarantees;
# every figure compared with backtest must be 0. Records docs/benchmarks.md.
chaos: install
	$(BIN)/python -m benchmarks.chaos

docs: install
	$(BIN)/stream-monitor config docs --out docs/configuration.md

clean:
	rm -rf $(VENV) .coverage .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist \
		native/target $(NATIVE)
