"""Monitor state as bytes: versioned, checked, optionally signed, and safe to load.

Layout::

    b"SMSNAP" | version (1 byte) | flags (1 byte) | check (32 bytes) | zstd(pickle(state))

(Only this version is read: another is refused, and the partition starts fresh.)

``check`` is an HMAC-SHA256 of everything before and after it when a signing key is configured
(flag bit 0), else a SHA-256 digest that catches corruption. Both are verified *before* anything
is deserialised, and the unpickler only accepts classes from stream-monitor, river and a few
standard containers, so a tampered or foreign snapshot is refused, never executed.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import pickle
from collections.abc import Callable
from typing import Any

import cramjam

from stream_monitor.errors import StreamMonitorError

__all__ = ["SNAPSHOT_VERSION", "SnapshotError", "dump_state", "load_state", "unpack_state"]

MAGIC = b"SMSNAP"
# 2: native detector state and array-backed score histograms; 3: ADWIN buckets without their
# variances, u32 score histograms, rolling hits as bits; 4: joint moments; 5: segments, the
# native label join, f32 reference edges and the joint detectors; 6: the same state, compressed
# with zstd instead of zlib; 7: the monitor's parts in their own modules (segments make their
# monitors through the class they hold, the reference summary in reference_view)
SNAPSHOT_VERSION = 7
# the versions read, each with its decompression
_READS: dict[int, Callable[[bytes], Any]] = {7: cramjam.zstd.decompress}
_SIGNED = 0x01
_HEADER = len(MAGIC) + 2
_CHECK = 32

_ALLOWED_MODULE_PREFIXES = ("stream_monitor.", "river.")
_ALLOWED = {
    ("builtins", name)
    for name in (
        "set",
        "frozenset",
        "dict",
        "list",
        "tuple",
        "int",
        "float",
        "str",
        "bytes",
        "bool",
        "complex",
        "slice",
        "range",
        "bytearray",
        "object",
    )
} | {
    ("collections", "OrderedDict"),
    ("collections", "Counter"),
    ("collections", "deque"),
    ("collections", "defaultdict"),
    ("copyreg", "_reconstructor"),
    ("pathlib", "PosixPath"),
    ("pathlib", "WindowsPath"),
    ("pathlib", "PurePosixPath"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("random", "Random"),
    ("array", "array"),
    ("array", "_array_reconstructor"),
    ("functools", "partial"),
}


class SnapshotError(StreamMonitorError):
    """A snapshot cannot be restored: wrong format or version, corrupted, tampered or unsigned."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED or module.startswith(_ALLOWED_MODULE_PREFIXES):
            return super().find_class(module, name)
        raise SnapshotError(f"snapshot refers to {module}.{name}, which is not allowed")


def _check(flags: int, header: bytes, payload: bytes, key: bytes | None) -> bytes:
    if flags & _SIGNED:
        assert key is not None  # noqa: S101 - callers pass a key exactly when signing
        return hmac.new(key, header + payload, hashlib.sha256).digest()
    return hashlib.sha256(header + payload).digest()


def dump_state(state: Any, key: bytes | None = None) -> bytes:
    """Serialise ``state``; signed with ``key`` when one is given."""
    payload = bytes(cramjam.zstd.compress(pickle.dumps(state, protocol=5), level=1))
    flags = _SIGNED if key else 0
    header = MAGIC + bytes([SNAPSHOT_VERSION, flags])
    return header + _check(flags, header, payload, key) + payload


def load_state(data: bytes, key: bytes | None = None) -> Any:
    """Verify and deserialise a snapshot made by :func:`dump_state`."""
    if len(data) < _HEADER + _CHECK or not data.startswith(MAGIC):
        raise SnapshotError("not a stream-monitor snapshot (bad magic bytes or truncated)")
    version, flags = data[len(MAGIC)], data[len(MAGIC) + 1]
    decompress = _READS.get(version)
    if decompress is None:
        raise SnapshotError(
            f"snapshot format version {version} is not supported (this version reads "
            f"{', '.join(map(str, _READS))}); discard the state and let the monitor rebuild it"
        )
    if flags & _SIGNED and key is None:
        raise SnapshotError("snapshot is signed but no state.signing_key is configured")
    if not flags & _SIGNED and key is not None:
        raise SnapshotError(
            "snapshot is not signed but state.signing_key is configured; refusing it"
        )
    header, check, payload = (
        data[:_HEADER],
        data[_HEADER : _HEADER + _CHECK],
        data[_HEADER + _CHECK :],
    )
    if not hmac.compare_digest(check, _check(flags, header, payload, key)):
        what = "signature does not match (tampered, or another key)" if key else "is corrupted"
        raise SnapshotError(f"snapshot {what}; refusing to load it")
    try:
        raw = bytes(decompress(payload))
        return _RestrictedUnpickler(io.BytesIO(raw)).load()
    except SnapshotError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoding failure means the same to the caller
        raise SnapshotError(f"snapshot cannot be decoded ({type(exc).__name__}: {exc})") from None


def unpack_state(state: Any, kind: str) -> tuple[str, str, Any]:
    """Check that a loaded snapshot holds a ``(kind, name, state)`` triple of the right kind."""
    if not (isinstance(state, tuple) and len(state) == 3 and state[0] == kind):
        raise SnapshotError(f"snapshot does not hold a {kind} state")
    return state[0], state[1], state[2]
