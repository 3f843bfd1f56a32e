"""The shape of the converted voice, for the avatar's mouth when no face is seen.

:class:`LevelTap` watches what the audio worker's sink gets; what it measures (three floats, anonymized audio
only) goes into a shared array that the video worker reads. No audio crosses processes.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.frames import AnonAudio


def voice_shape(samples: np.ndarray, rate: int) -> tuple[float, float, float]:
    """(RMS level, roundness, spread) of a block: the share of spectral energy below 1 kHz ("oh/oo"
    vowels) and above 2.5 kHz ("ee", sibilants), for visemes. Zeros for silence."""
    if len(samples) == 0:
        return 0.0, 0.0, 0.0
    rms = float(np.sqrt(np.mean(np.square(samples))))
    spec = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    f = np.fft.rfftfreq(len(samples), 1.0 / rate)
    total = spec[(f >= 80) & (f < 6000)].sum()
    if total <= 1e-12:
        return rms, 0.0, 0.0
    return rms, float(spec[(f >= 80) & (f < 1000)].sum() / total), float(spec[(f >= 2500) & (f < 6000)].sum() / total)


class LevelTap:
    """A tap on the audio runner (:class:`~ravasd.engine.runner.Tap`): the shape of every block the
    sink got (anonymized only) goes, smoothed, into the shared array the video worker reads."""

    def __init__(self, shared: Any) -> None:
        self.shared = shared

    def write(self, block: AnonAudio) -> None:
        for i, v in enumerate(voice_shape(block.samples, block.rate)):
            self.shared[i] = 0.7 * self.shared[i] + 0.3 * v

    def close(self) -> None:
        for i in range(len(self.shared)):
            self.shared[i] = 0.0
