"""Life for an avatar nobody is driving (the face is not seen): blinks at natural, irregular
intervals, small gaze shifts, and a slow drift of the head — so a paused-looking face never
stares. Deterministic for a given seed and time line (offline runs give the same frames).

Figures from the literature on spontaneous blinking and fixations, rounded: a blink every 2–6 s
(sometimes two in a row), closing in ~70 ms and opening in ~150 ms; gaze holds for 0.6–2.5 s and
moves a few degrees; head drift of about a degree.
"""

from __future__ import annotations

import math

import numpy as np

from ..tracking import ARKIT_NAMES

_I = {n: i for i, n in enumerate(ARKIT_NAMES)}
BLINK = (_I["eyeBlinkLeft"], _I["eyeBlinkRight"])
CLOSE_S, OPEN_S = 0.07, 0.15


class IdleLife:
    """``at(t)`` → (ARKit weights (52,) float32, yaw, pitch, roll in degrees) for time ``t`` (s,
    increasing; a jump back restarts the schedule). Called from the video worker thread."""

    def __init__(self, seed: int = 7) -> None:
        self.seed = seed
        self._reset(0.0)

    def _reset(self, t: float) -> None:
        self.rng = np.random.default_rng(self.seed)
        self._t = t
        self._next_blink = t + 1.0 + self.rng.uniform(0, 2)
        self._blink_at = -1e9
        self._gaze, self._gaze_from, self._gaze_since = np.zeros(2), np.zeros(2), t
        self._next_gaze = t + self.rng.uniform(0.6, 2.5)

    def at(self, t: float) -> tuple[np.ndarray, float, float, float]:
        if t < self._t:
            self._reset(t)
        self._t = t
        w = np.zeros(len(ARKIT_NAMES), np.float32)
        # ---- blinks: a renewal process with a 2 s floor; one in six is followed by a second
        if t >= self._next_blink:
            self._blink_at = self._next_blink
            gap = 0.35 if self.rng.random() < 1 / 6 else 2.0 + self.rng.gamma(2.0, 0.9)
            self._next_blink = self._blink_at + gap
        since = t - self._blink_at
        if 0 <= since < CLOSE_S:
            closed = since / CLOSE_S
        elif CLOSE_S <= since < CLOSE_S + OPEN_S:
            closed = 1.0 - (since - CLOSE_S) / OPEN_S
        else:
            closed = 0.0
        closed = closed * closed * (3 - 2 * closed)  # eased, as lids move
        w[list(BLINK)] = closed
        # ---- gaze: hold, then a quick shift (~50 ms) to a point near the centre
        if t >= self._next_gaze:
            self._gaze_from = self._gaze_now(t)
            self._gaze = self.rng.normal(0, 0.12, 2).clip(-0.3, 0.3) if self.rng.random() < 0.7 else np.zeros(2)
            self._gaze_since, self._next_gaze = t, t + self.rng.uniform(0.6, 2.5)
        gx, gy = self._gaze_now(t)
        for side, outward in (("Left", 1.0), ("Right", -1.0)):
            # the avatar's left eye looks out when the gaze goes to its left (+x)
            h = gx * outward
            w[_I[f"eyeLookOut{side}"]] = max(0.0, h)
            w[_I[f"eyeLookIn{side}"]] = max(0.0, -h)
            w[_I[f"eyeLookUp{side}"]] = max(0.0, gy)
            w[_I[f"eyeLookDown{side}"]] = max(0.0, -gy)
        # ---- head: a slow drift (incommensurate sines: never repeats visibly), about a degree
        yaw = 1.6 * math.sin(t * 0.31 + 1.0) + 0.6 * math.sin(t * 0.83)
        pitch = 1.0 * math.sin(t * 0.23 + 2.0) + 0.4 * math.sin(t * 0.71 + 0.5)
        roll = 0.7 * math.sin(t * 0.19 + 4.0)
        return w, yaw, pitch, roll

    def _gaze_now(self, t: float) -> np.ndarray:
        k = min(1.0, (t - self._gaze_since) / 0.05)
        return self._gaze_from + (self._gaze - self._gaze_from) * k
