"""The shape of the converted voice, for the avatar's mouth when no face is seen.

:class:`LevelTap` watches what the audio worker's sink gets; what it measures (four floats, from the
anonymized audio only) goes into a shared array that the video worker reads. No audio crosses processes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.frames import AnonAudio
from .viseme import HOP_S, VISEMES, VisemeFeatures, VisemeModel

SHARED = tuple(VISEMES.index(k) for k in ("open", "spread", "round"))  # shared[1:], in this order


class LevelTap:
    """A tap on the audio runner (:class:`~ravasd.engine.runner.Tap`): what every block the sink got
    (anonymized only) says about the mouth goes into the shared array the video worker reads:
    ``[level, open, spread, round]`` — the RMS level (smoothed over ~30 ms) and the probabilities of
    the viseme classes (:mod:`.viseme`, smoothed over ~40 ms; 0 between words). Publish thread."""

    LEVEL_S, SHAPE_S = 0.03, 0.04

    def __init__(self, shared: Any, model: VisemeModel | None = None) -> None:
        self.shared = shared
        self.model = model or VisemeModel()
        self._feats: VisemeFeatures | None = None

    def write(self, block: AnonAudio) -> None:
        x = block.samples
        if not len(x):
            return
        if self._feats is None or self._feats.rate != block.rate:
            self._feats = self.model.features(block.rate)
        rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
        if not np.isfinite(rms):  # a broken block must not poison the running statistics for good
            return
        a = 1.0 - np.exp(-len(x) / block.rate / self.LEVEL_S)
        self.shared[0] = float(self.shared[0] + a * (rms - self.shared[0]))
        frames, voiced = self._feats.push(x)
        if len(frames):
            p = np.where(voiced[:, None], self.model.probs(frames), 0.0).mean(0)
            b = 1.0 - np.exp(-len(frames) * HOP_S / self.SHAPE_S)
            for i, k in enumerate(SHARED, start=1):
                self.shared[i] = float(self.shared[i] + b * (p[k] - self.shared[i]))

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
