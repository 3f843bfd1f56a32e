"""Pose filtering: One Euro smoothing, neutral-face calibration, left/right noise suppression.

All operate on vectors: the 52 ARKit weights plus (yaw, pitch, roll). Called from the video
convert thread once per tracked frame.
"""

from __future__ import annotations

import math

import numpy as np

from .tracking import ARKIT_NAMES, FacePose


class OneEuroFilter:
    """The 1€ filter (Casiez et al. 2012) on a vector: low jitter at rest, little lag in motion.

    ``min_cutoff`` (Hz) sets smoothing at rest, ``beta`` how fast the cutoff rises with speed.
    """

    def __init__(self, min_cutoff: float = 1.5, beta: float = 0.3, d_cutoff: float = 1.0) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None or self._t is None or t <= self._t:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        dx = (x - self._x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        a = self._alpha(cutoff, dt)
        self._x = a * x + (1 - a) * self._x
        self._t = t
        return self._x.copy()

    def reset(self) -> None:
        self._x = self._dx = self._t = None


_PAIRS = [(i, ARKIT_NAMES.index(n.replace("Left", "Right"))) for i, n in enumerate(ARKIT_NAMES) if n.endswith("Left")]


class PoseFilter:
    """Calibrate → de-noise left/right → smooth. ``apply(pose)`` returns (weights(52), yaw, pitch, roll).

    * Calibration: ``start_calibration()`` collects ~``calib_s`` seconds of resting face; their mean
      weights (and head angles) become offsets subtracted from then on, rescaled so 1 stays 1.
    * Left/right: a difference below ``lr_noise`` (the model's bias, ~0.1) is replaced by the mean
      of the pair, so a symmetric smile does not look lopsided.
    """

    def __init__(self, min_cutoff: float = 1.5, beta: float = 0.3, lr_noise: float = 0.1, calib_s: float = 1.0) -> None:
        self.filter = OneEuroFilter(min_cutoff, beta)
        self.lr_noise = lr_noise
        self.calib_s = calib_s
        self.offsets = np.zeros(len(ARKIT_NAMES))
        self.angle_offsets = np.zeros(3)
        self._calib: list[np.ndarray] | None = None
        self._calib_t0 = 0.0

    def start_calibration(self) -> None:
        self._calib = []

    @property
    def calibrating(self) -> bool:
        return self._calib is not None

    def apply(self, pose: FacePose) -> tuple[np.ndarray, float, float, float]:
        raw = np.concatenate([pose.weights.astype(np.float64), [pose.yaw, pose.pitch, pose.roll]])
        if self._calib is not None:
            if not self._calib:
                self._calib_t0 = pose.ts
            self._calib.append(raw)
            if pose.ts - self._calib_t0 >= self.calib_s and len(self._calib) >= 5:
                mean = np.mean(self._calib, axis=0)
                self.offsets, self.angle_offsets = np.clip(mean[:-3], 0, 0.8), mean[-3:]
                self._calib = None
        w = raw[:-3]
        w = np.clip((w - self.offsets) / (1 - self.offsets), 0, 1)
        for li, ri in _PAIRS:
            if abs(w[li] - w[ri]) < self.lr_noise:
                w[li] = w[ri] = (w[li] + w[ri]) / 2
        angles = raw[-3:] - self.angle_offsets
        out = self.filter(np.concatenate([w, angles]), pose.ts)
        return np.clip(out[:-3], 0, 1).astype(np.float32), float(out[-3]), float(out[-2]), float(out[-1])

    def reset(self) -> None:
        self.filter.reset()
