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


class MeteredSource:
    """Wraps an audio source; after each block, its level (RMS, dBFS, smoothed over ~0.1 s) goes into
    ``shared[0]`` for the settings window's input meter. Only this one number leaves the worker."""

    def __init__(self, source: Any, shared: Any) -> None:
        self.source = source
        self.shared = shared

    def read(self) -> Any:
        item = self.source.read()
        if item is not None and len(item.samples):
            rms = float(np.sqrt(np.mean(np.square(item.samples, dtype=np.float64))))
            db = 20 * np.log10(max(rms, 1e-6))
            alpha = min(1.0, len(item.samples) / item.rate / 0.1)
            self.shared[0] = float(self.shared[0] + alpha * (db - self.shared[0]))
        return item

    def close(self) -> None:
        self.shared[0] = -120.0
        self.source.close()

    def __getattr__(self, name: str) -> Any:  # device counters (xruns, dropped) of the wrapped source
        return getattr(self.source, name)
