"""Ring modulation: multiply the voice by a low-frequency sine (the classic "robot" voice)."""

from __future__ import annotations

import numpy as np

from ...engine.frames import AnonAudio, RawAudio


class RingModulator:
    """Sample-wise, so it has zero look-ahead and streams exactly (the carrier phase is the state).

    The output is input × sin(2π f t) alone: no dry voice is mixed back in.
    """

    latency = 0

    def __init__(self, rate: int, carrier_hz: float = 30.0) -> None:
        self.rate = rate
        self.carrier_hz = carrier_hz
        self._n = 0  # samples processed: the carrier phase

    def process(self, block: RawAudio) -> AnonAudio:
        x = np.nan_to_num(np.asarray(block.samples, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        t = (self._n + np.arange(len(x))) / self.rate
        self._n += len(x)
        y = np.clip(x * np.sin(2 * np.pi * self.carrier_hz * t).astype(np.float32) * 1.4, -1, 1)
        return AnonAudio(y.astype(np.float32), self.rate, block.ts)

    def reset(self) -> None:
        self._n = 0

    def close(self) -> None:
        pass
