"""Run a voice at another rate than the stream's (e.g. a 44.1 kHz device, a 48 kHz voice) with soxr.

soxr's streaming resampler gives the same samples whatever the chunking, so the wrapped voice still
streams exactly. Its "quick" (cubic) quality has ~1 sample of delay and never holds output back;
its band-limited qualities hold back up to 20 ms per direction. Cubic is clean here because the
voices' content ends at 7.2 kHz, far below either Nyquist frequency.
"""

from __future__ import annotations

import numpy as np
import soxr

from ...engine.frames import AnonAudio, RawAudio
from .base import OutputQueue


class Resampled:
    """``inner`` runs at ``inner_rate``; this object streams at ``rate``. Output = same length as
    input, delayed by :attr:`latency` stream samples (the inner latency, rescaled, + a small margin)."""

    MARGIN = 16  # stream samples held back so soxr's irregular output never runs dry

    def __init__(self, inner, rate: int, inner_rate: int) -> None:
        self.inner, self.rate, self.inner_rate = inner, rate, inner_rate
        self.latency = self.MARGIN + round(getattr(inner, "latency", 0) * rate / inner_rate)
        self.reset(inner_too=False)

    def reset(self, inner_too: bool = True) -> None:
        if inner_too:
            self.inner.reset()
        self._to = soxr.ResampleStream(self.rate, self.inner_rate, 1, dtype="float32", quality="QQ")
        self._back = soxr.ResampleStream(self.inner_rate, self.rate, 1, dtype="float32", quality="QQ")
        self._out = OutputQueue(self.MARGIN)

    def process(self, block: RawAudio) -> AnonAudio:
        x = np.nan_to_num(np.asarray(block.samples, np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
        up = self._to.resample_chunk(x)
        y = self.inner.process(RawAudio(up, self.inner_rate, block.ts)).samples if len(up) else up
        down = self._back.resample_chunk(np.asarray(y, np.float32)) if len(y) else np.zeros(0, np.float32)
        self._out.push(down)
        return AnonAudio(np.clip(self._out.pop(len(x)), -1, 1).astype(np.float32), self.rate, block.ts)

    def close(self) -> None:
        self.inner.close()
