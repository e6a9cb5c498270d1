"""Per-track temporal smoothing of emotion probabilities, so a video's labels do not flicker frame to frame.

A face's label from one frame to the next changes for reasons that are not expressions: the box slides by a
few pixels, a predicted box replaces a detected one, a frame is blurred. An exponential moving average in
*time* (not in frames, so variable frame rates, ``--fps`` sampling and dropped live frames weigh the same):
``p <- a * p + (1 - a) * p_frame`` with ``a = exp(-dt / tau)``. ``tau`` is ``--smooth SECONDS``; 0 switches it
off. The raw per-frame labels stay in the outputs beside the smoothed ones.

Why an EMA and not a centred window: it needs only the past, so the live path (webcam) and the batch give
the same smoothed value for the same frame, and its state is two numbers per track, which ``--resume`` saves.
The default (``SMOOTH_S``) was chosen by ``benchmarks/video_speed.py --smoothing``; the measurement is in
README's video section.
"""

from __future__ import annotations

import math

import numpy as np

SMOOTH_S = 0.5  # seconds; see the module docstring


class Smoother:
    """The smoothed probabilities of every live track; tracks not updated for ``forget_s`` are dropped."""

    def __init__(self, tau_s: float = SMOOTH_S, forget_s: float = 5.0) -> None:
        if tau_s < 0 or not math.isfinite(tau_s):
            raise ValueError(f"smoothing must be >= 0 seconds, got {tau_s}")
        self.tau_s = tau_s
        self.forget_s = forget_s
        self._tracks: dict[int, tuple[float, np.ndarray]] = {}

    def update(self, track: int, time_s: float, probs: np.ndarray) -> np.ndarray:
        """The track's smoothed probabilities after this frame's ``probs`` (float32 (7,), summing to 1)."""
        probs = np.asarray(probs, dtype=np.float64)
        last = self._tracks.get(track)
        if last is None or self.tau_s == 0:
            out = probs
        else:
            t0, p0 = last
            a = math.exp(-max(0.0, time_s - t0) / self.tau_s)
            out = a * p0 + (1 - a) * probs
        self._tracks[track] = (time_s, out)
        return out.astype(np.float32)

    def forget(self, time_s: float) -> None:
        """Drop tracks last updated more than ``forget_s`` ago (ended tracks; numbers are never reused)."""
        self._tracks = {k: v for k, v in self._tracks.items() if time_s - v[0] <= self.forget_s}

    def state(self) -> dict:
        return {"tau_s": self.tau_s, "forget_s": self.forget_s,
                "tracks": {str(k): [t, p.tolist()] for k, (t, p) in self._tracks.items()}}

    @classmethod
    def from_state(cls, state: dict) -> Smoother:
        s = cls(float(state["tau_s"]), float(state["forget_s"]))
        s._tracks = {int(k): (float(t), np.asarray(p, np.float64)) for k, (t, p) in state["tracks"].items()}
        return s


def label_changes(labels: list[str]) -> int:
    """How often a sequence of labels changes: the flicker that smoothing is measured by."""
    return sum(1 for a, b in zip(labels, labels[1:], strict=False) if a != b)
