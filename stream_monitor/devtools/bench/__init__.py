"""The end-to-end benchmark (`stream-monitor bench`) and the reference workload."""

from stream_monitor.devtools.bench.runner import BenchOptions, BenchResult, run_bench, table
from stream_monitor.devtools.bench.workload import reference_events

__all__ = ["BenchOptions", "BenchResult", "reference_events", "run_bench", "table"]
