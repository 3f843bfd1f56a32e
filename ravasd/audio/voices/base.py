"""Framework for block-size-independent streaming voices.

A :class:`FrameVoice` runs a frame transform (analysis window → ``transform`` → overlap-add) at an
inner rate, with stateful FIR resampling from/to the stream rate. Everything depends only on the
sample count, never on block boundaries, so a streamed run over any block size equals the offline
run: output = the transformed input delayed by exactly :attr:`latency` stream samples.
"""
from __future__ import annotations

from collections import deque

import numpy as np
from scipy import signal

from ...engine.frames import AnonAudio, RawAudio


def sanitize(x: np.ndarray) -> np.ndarray:
    """NaN/inf → 0, clipping → ±1, float32 mono."""
    x = np.nan_to_num(np.asarray(x, np.float32).reshape(-1), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(x, -1.0, 1.0)


class _Decimator:
    """Low-pass FIR + keep every ``factor``-th sample; state carried across calls."""

    def __init__(self, factor: int, taps: np.ndarray) -> None:
        self.factor, self.taps = factor, taps
        self.zi = np.zeros(len(taps) - 1)
        self.phase = 0  # index (within the next call) of the next sample to keep

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.factor == 1 or len(x) == 0:
            return x
        y, self.zi = signal.lfilter(self.taps, [1.0], x, zi=self.zi)
        out = y[self.phase::self.factor]
        self.phase = (self.phase - len(x)) % self.factor
        return out.astype(np.float32)


class _Interpolator:
    """Zero-stuff by ``factor`` + low-pass FIR (gain ``factor``); state carried across calls."""

    def __init__(self, factor: int, taps: np.ndarray) -> None:
        self.factor, self.taps = factor, taps * factor
        self.zi = np.zeros(len(taps) - 1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.factor == 1 or len(x) == 0:
            return x
        up = np.zeros(len(x) * self.factor)
        up[:: self.factor] = x
        y, self.zi = signal.lfilter(self.taps, [1.0], up, zi=self.zi)
        return y.astype(np.float32)


class FrameVoice:
    """Base class: subclasses set ``inner_rate``, ``frame``, ``hop`` and implement ``transform``.

    ``transform(frame)`` receives one analysis frame (already windowed, ``frame`` samples at the
    inner rate) and returns the synthesis frame of the same length; frames are overlap-added with
    ``hop``. The analysis window must overlap-add to 1 at that hop (periodic Hann, hop = frame/2).
    """

    inner_rate = 16000
    frame = 320
    hop = 160
    taps = 63

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.factor = rate // self.inner_rate if rate % self.inner_rate == 0 else 1
        if self.factor == 1 and rate != self.inner_rate:
            raise ValueError(f"{type(self).__name__} needs a stream rate that is a multiple of "
                             f"{self.inner_rate} Hz, got {rate}")
        self.window = signal.get_window("hann", self.frame).astype(np.float32)  # periodic: OLA sums to 1
        cutoff = 0.45 * self.inner_rate
        self._fir = signal.firwin(self.taps, cutoff, fs=rate) if self.factor > 1 else np.ones(1)
        delay = (self.taps - 1) if self.factor > 1 else 0  # decimator + interpolator group delays
        self._prefill = self.factor * (self.frame + self.hop + 1)
        self.latency = self._prefill + delay
        self.reset()

    def reset(self) -> None:
        self._down = _Decimator(self.factor, self._fir)
        self._up = _Interpolator(self.factor, self._fir)
        self._in = np.zeros(0, np.float32)
        self._ola = np.zeros(self.frame, np.float32)
        self._out: deque[np.ndarray] = deque([np.zeros(self._prefill, np.float32)])
        self._out_len = self._prefill

    def transform(self, frame: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _run_frames(self, inner: np.ndarray) -> np.ndarray:
        self._in = np.concatenate([self._in, inner])
        done = []
        while len(self._in) >= self.frame:
            y = self.transform(self._in[: self.frame] * self.window)
            self._ola += y.astype(np.float32)
            done.append(self._ola[: self.hop].copy())
            self._ola = np.concatenate([self._ola[self.hop:], np.zeros(self.hop, np.float32)])
            self._in = self._in[self.hop:]
        return np.concatenate(done) if done else np.zeros(0, np.float32)

    def process_samples(self, x: np.ndarray) -> np.ndarray:
        """Stream-rate samples in → the same number out (delayed by ``latency``)."""
        x = sanitize(x)
        produced = self._up(self._run_frames(self._down(x)))
        if len(produced):
            self._out.append(produced)
            self._out_len += len(produced)
        n = len(x)
        if self._out_len < n:  # cannot happen with the prefill; guard against a silent stall anyway
            self._out.append(np.zeros(n - self._out_len, np.float32))
            self._out_len = n
        buf = np.concatenate(list(self._out))
        out, rest = buf[:n], buf[n:]
        self._out = deque([rest])
        self._out_len = len(rest)
        return np.clip(out, -1.0, 1.0)

    def process(self, block: RawAudio) -> AnonAudio:
        return AnonAudio(self.process_samples(block.samples), block.rate, block.ts)

    def close(self) -> None:
        pass
