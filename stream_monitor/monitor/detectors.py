"""Change detectors on the error stream of labelled predictions (concept drift).

The detectors on features and the prediction signal (ADWIN, Page-Hinkley) run inside the native
core, fed standardised block means of each signal (``native/src/model.rs``). Here are the
error-stream detectors of ``performance.detectors``: HDDM_A runs natively
(``stream_monitor._native.Hddma``, the same detections as river's); DDM, EDDM and HDDM_W are
river's, imported only when configured. Each sees the error rate of blocks of
``performance.detector_block`` labelled predictions.
"""

from __future__ import annotations

from typing import Any

from stream_monitor._native import Hddma

__all__ = ["BlockErrorDetector", "make_error_detector"]


class BlockErrorDetector:
    """A river error-rate detector fed the error rate of blocks of labelled predictions."""

    __slots__ = ("block", "detector", "errors", "filled", "name")

    def __init__(self, name: str, block: int = 1, confidence: float = 1e-6) -> None:
        self.name = name
        self.detector = make_error_detector(name, confidence)
        self.block = block
        self.errors = 0
        self.filled = 0

    def update(self, wrong: bool) -> bool:
        """Feed one outcome; True when a completed block makes the detector signal a change."""
        self.errors += wrong
        self.filled += 1
        if self.filled < self.block:
            return False
        rate = self.errors / self.filled
        self.errors = self.filled = 0
        self.detector.update(rate if self.block > 1 else int(rate))
        return bool(self.detector.drift_detected)

    def update_many(self, wrong: list[bool]) -> list[int]:
        """Feed outcomes in order; the indices of those after which a change was signalled."""
        detector = self.detector
        if self.block > 1 or not isinstance(detector, Hddma):
            update = self.update
            return [i for i, value in enumerate(wrong) if update(value)]
        return detector.update_many(wrong)


def make_error_detector(name: str, confidence: float = 1e-6) -> Any:
    """A detector for a 0/1 error stream: ddm, eddm, hddm_w (river's) or hddm_a (native);
    ``confidence``: the drift confidence of the HDDMs."""
    if name == "hddm_a":
        return Hddma(confidence)
    if name not in ("ddm", "eddm", "hddm_w"):
        raise ValueError(f"unknown error detector {name!r}")
    from river.drift import binary  # noqa: PLC0415 - river is only imported when asked for

    river: Any = binary  # river is untyped
    if name == "ddm":
        return river.DDM()
    if name == "eddm":
        return river.EDDM()
    # HDDM at 1e-6 instead of river's 1e-3 (for HDDM_A too): at 1e-3 an error rate of 0.45 that
    # never changes raised 2 detections in 300,000 labels here; at 1e-5 none, still finding
    # 0.45 -> 0.6 in about 400 labels.
    return river.HDDMW(drift_confidence=confidence, warning_confidence=5 * confidence)
