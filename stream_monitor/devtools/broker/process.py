"""Start, track and stop a detached broker process (shared by the Kafka and Tansu launchers).

Each broker gets a run folder ``<cache>/run/<kind>-<port>/`` with its pid, log and data, so
``broker stop`` finds it from another shell and a second ``broker start`` on the same port is
refused with a clear message.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from stream_monitor.errors import BrokerError

__all__ = [
    "BrokerInfo",
    "cache_dir",
    "check_port_free",
    "free_port",
    "launch",
    "make_log_dir",
    "memory_dir",
    "remove_run_dir",
    "restart",
    "run_dir_for",
    "running_brokers",
    "stop",
]

_LOG_TAIL_LINES = 25
# Brokers started by this process: holding the Popen keeps it from warning that the broker
# still runs when the object is collected (the broker is meant to outlive the command).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def cache_dir() -> Path:
    """Where jars and run folders live: ``$XDG_CACHE_HOME/stream-monitor`` or ``~/.cache/...``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "stream-monitor"


def memory_dir(need_bytes: int = 2 << 30) -> Path | None:
    """A folder in RAM (tmpfs) for a throwaway broker's logs, or None when there is no
    writable ``/dev/shm`` with ``need_bytes`` free (a container's is often 64 MB)."""
    shm = Path("/dev/shm")  # noqa: S108 - the system's shared-memory mount, not a temp file
    try:
        stats = os.statvfs(shm)
    except OSError:
        return None
    if not os.access(shm, os.W_OK) or stats.f_bavail * stats.f_frsize < need_bytes:
        return None
    return shm / f"stream-monitor-{os.getuid()}"


def make_log_dir(run_dir: Path, name: str, *, memory: Path | None) -> Path:
    """The broker's log folder: ``memory/name`` linked from ``run_dir/data``, or
    ``run_dir/data`` itself when ``memory`` is None. Returns the real folder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    link = run_dir / "data"
    if memory is None:
        link.mkdir()
        return link
    target = memory / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    link.symlink_to(target, target_is_directory=True)
    return target


def remove_run_dir(run_dir: Path) -> None:
    """Delete a run folder, with the log folder in memory its ``data`` link points to."""
    data = run_dir / "data"
    if data.is_symlink():
        shutil.rmtree(data.resolve(), ignore_errors=True)
    shutil.rmtree(run_dir, ignore_errors=True)


@dataclass(frozen=True)
class BrokerInfo:
    """A broker started by this tool."""

    kind: str
    port: int
    pid: int
    run_dir: Path

    @property
    def bootstrap(self) -> str:
        """The address clients connect to."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        """The broker's own log."""
        return self.run_dir / "broker.log"


def check_port_free(port: int) -> None:
    """Raise :class:`BrokerError` when ``127.0.0.1:port`` is already bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the broker itself: connections lingering in TIME_WAIT do not make a port busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise BrokerError(
                f"port {port} on 127.0.0.1 is already in use; stop what uses it "
                f"(`stream-monitor broker stop --port {port}` if it is our broker) "
                "or choose another with --port"
            ) from None


def free_port() -> int:
    """An unused loopback port (for the KRaft controller listener)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child that has exited: reap it
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-_LOG_TAIL_LINES:])


def _port_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def run_dir_for(kind: str, port: int) -> Path:
    """The run folder of the broker of ``kind`` on ``port``."""
    return cache_dir() / "run" / f"{kind}-{port}"


def launch(
    *,
    kind: str,
    port: int,
    argv: list[str],
    run_dir: Path,
    ready_marker: str | None,
    timeout: float,
) -> BrokerInfo:
    """Start ``argv`` detached, wait until it logs ``ready_marker`` and the port answers."""
    log_path = run_dir / "broker.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=run_dir,
        )
    _CHILDREN[proc.pid] = proc
    info = BrokerInfo(kind=kind, port=port, pid=proc.pid, run_dir=run_dir)
    (run_dir / "broker.json").write_text(
        json.dumps(
            {
                "kind": kind,
                "port": port,
                "pid": proc.pid,
                "argv": argv,
                "ready_marker": ready_marker,
                "timeout": timeout,
            }
        ),
        encoding="utf-8",
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerError(
                f"{kind} broker exited with code {proc.returncode} during start-up; "
                f"its log ({log_path}) ends with:\n{_tail(log_path)}"
            )
        marker_seen = ready_marker is None or ready_marker in log_path.read_text(
            encoding="utf-8", errors="replace"
        )
        if marker_seen and _port_answers(port):
            return info
        time.sleep(0.2)
    stop(info)
    raise BrokerError(
        f"{kind} broker did not become ready on 127.0.0.1:{port} within {timeout:.0f} s; "
        f"its log ({log_path}) ends with:\n{_tail(log_path)}"
    )


def running_brokers() -> list[BrokerInfo]:
    """Brokers started by this tool that are still running (stale records are removed)."""
    found: list[BrokerInfo] = []
    root = cache_dir() / "run"
    if not root.is_dir():
        return found
    for record in sorted(root.glob("*/broker.json")):
        try:
            data = json.loads(record.read_text(encoding="utf-8"))
            info = BrokerInfo(data["kind"], int(data["port"]), int(data["pid"]), record.parent)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _alive(info.pid):
            found.append(info)
        else:
            remove_run_dir(info.run_dir)
    return found


def restart(info: BrokerInfo, down_for: float = 0.0, timeout: float = 30.0) -> BrokerInfo:
    """Stop a broker cleanly, keep its data, wait ``down_for`` seconds and start it again.

    Clients see a real outage: connections refused, then a broker that recovers its logs.
    """
    record = json.loads((info.run_dir / "broker.json").read_text(encoding="utf-8"))
    _terminate(info, timeout)
    time.sleep(down_for)
    return launch(
        kind=info.kind,
        port=info.port,
        argv=list(record["argv"]),
        run_dir=info.run_dir,
        ready_marker=record["ready_marker"],
        timeout=float(record["timeout"]),
    )


def stop(info: BrokerInfo, timeout: float = 30.0) -> None:
    """Stop a broker and delete its run folder (data included)."""
    _terminate(info, timeout)
    remove_run_dir(info.run_dir)


def _terminate(info: BrokerInfo, timeout: float) -> None:
    """SIGTERM for a clean shutdown, SIGKILL if it does not exit in time."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(info.pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(info.pid):
            time.sleep(0.1)
        if not _alive(info.pid):
            break
    _CHILDREN.pop(info.pid, None)
