"""`stream-monitor ingest` under load: KServe payload-logger CloudEvents per second, and latency.

    .venv/bin/python -m benchmarks.ingest            # records docs/benchmarks.md

Starts an Apache Kafka broker on a free port (or uses ``--bootstrap-servers``) and
`stream-monitor ingest` as its own process, then posts request/response pairs (binary mode, V1,
one 12-feature row each) from ``--concurrency`` clients at once; every response is answered only
after the broker acknowledged its event. Prints requests/s, events/s and p50/p99 per request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
from typing import Any

import aiohttp
import httpx
import orjson

from benchmarks.kafka import a_broker
from benchmarks.record import machine, record
from stream_monitor.devtools.broker.process import free_port
from stream_monitor.monitor.quantiles import nearest_rank


def cloudevent(kind: str, event_id: str, body: object) -> dict[str, Any]:
    return {
        "headers": {
            "ce-specversion": "1.0",
            "ce-id": event_id,
            "ce-type": f"org.kubeflow.serving.inference.{kind}",
            "ce-source": "http://localhost:9081/",
            "ce-inferenceservicename": "fraud",
            "content-type": "application/json",
        },
        "content": orjson.dumps(body),
    }


async def load(url: str, pairs: int, concurrency: int) -> tuple[list[float], float, int]:
    """Milliseconds per request, seconds in all, responses other than 200/202."""
    rng = random.Random(1)
    took: list[float] = []
    failed = 0
    todo = iter(range(pairs))

    async def client(http: aiohttp.ClientSession) -> None:
        nonlocal failed
        for i in todo:
            row = [rng.gauss(0, 1) for _ in range(12)]
            for kind, body in (
                ("request", {"instances": [row]}),
                ("response", {"predictions": [[0.3, 0.7]]}),
            ):
                event = cloudevent(kind, f"r{i}", body)
                started = time.perf_counter()
                async with http.post(url, data=event["content"], headers=event["headers"]) as r:
                    await r.read()
                    failed += r.status not in (200, 202)
                took.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        return took, time.perf_counter() - started, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    with a_broker(args.bootstrap_servers) as bootstrap:
        took, seconds, failed = serve_and_load(bootstrap, args.pairs, args.concurrency)
    took.sort()
    p50, p99 = nearest_rank(took, 0.5), nearest_rank(took, 0.99)
    rows = [
        f"| {args.pairs:,} pairs, {args.concurrency} clients at once | "
        f"{len(took) / seconds:,.0f} requests/s ({args.pairs / seconds:,.0f} events/s) | "
        f"{p50:.1f} ms | {p99:.1f} ms | {failed} |"
    ]
    print(*rows, sep="\n")
    body = "\n".join(
        [
            f"Measured on: {machine()}; broker, ingest and clients on the same machine.",
            f"Command: `.venv/bin/python -m benchmarks.ingest --pairs {args.pairs} "
            f"--concurrency {args.concurrency}`.",
            "",
            "| Load | Throughput | p50 | p99 | errors |",
            "| --- | --- | --- | --- | --- |",
            *rows,
        ]
    )
    if not args.no_record:
        record("ingest", body)


def serve_and_load(bootstrap: str, pairs: int, concurrency: int) -> tuple[list[float], float, int]:
    """`stream-monitor ingest` as its own process on ``bootstrap``, then :func:`load` on it."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAM_MONITOR_")}
    env["STREAM_MONITOR_LOGGING__LEVEL"] = "WARNING"
    command = ["ingest", "--port", str(port), "--bootstrap-servers", bootstrap]
    server = subprocess.Popen([sys.executable, "-m", "stream_monitor", *command], env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}stats", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("ingest did not start in 60 s") from None
                time.sleep(0.2)
        asyncio.run(load(url, 500, concurrency))  # warm up
        return asyncio.run(load(url, pairs, concurrency))
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
