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


class _FIR:
    """A causal FIR over a stream: the last ``len(taps) − 1`` inputs carried across calls (``np.convolve``
    on them and the new block: a tenth of ``lfilter``'s per-call cost on 5 ms blocks)."""

    def __init__(self, taps: np.ndarray) -> None:
        self.taps = np.asarray(taps, np.float64)
        self.hist = np.zeros(len(taps) - 1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        full = np.concatenate([self.hist, x])
        self.hist = full[len(full) - len(self.hist) :]
        return np.convolve(full, self.taps, "valid")


class _Decimator:
    """Low-pass FIR + keep every ``factor``-th sample; state carried across calls."""

    def __init__(self, factor: int, taps: np.ndarray) -> None:
        self.factor, self.fir = factor, _FIR(taps)
        self.phase = 0  # index (within the next call) of the next sample to keep

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.factor == 1 or len(x) == 0:
            return x
        out = self.fir(x)[self.phase :: self.factor]
        self.phase = (self.phase - len(x)) % self.factor
        return out.astype(np.float32)


class _Interpolator:
    """Zero-stuff by ``factor`` + low-pass FIR (gain ``factor``); state carried across calls."""

    def __init__(self, factor: int, taps: np.ndarray) -> None:
        self.factor, self.fir = factor, _FIR(taps * factor)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.factor == 1 or len(x) == 0:
            return x
        up = np.zeros(len(x) * self.factor)
        up[:: self.factor] = x
        return self.fir(up).astype(np.float32)


class OutputQueue:
    """Output produced ahead of demand (starts with ``prefill`` zeros); ``pop(n)`` returns exactly
    n samples — zeros if it ever ran short (it cannot with a correct prefill; it never stalls)."""

    def __init__(self, prefill: int) -> None:
        self._parts: deque[np.ndarray] = deque([np.zeros(prefill, np.float32)])
        self._len = prefill

    def push(self, x: np.ndarray) -> None:
        if len(x):
            self._parts.append(x)
            self._len += len(x)

    def pop(self, n: int) -> np.ndarray:
        if self._len < n:
            self.push(np.zeros(n - self._len, np.float32))
        buf = np.concatenate(list(self._parts))
        self._parts = deque([buf[n:]])
        self._len = len(buf) - n
        return buf[:n]


class InnerRateVoice:
    """Streaming skeleton for voices that work at ``inner_rate``: stateful FIR decimation from the
    stream rate (a multiple of it), :meth:`_inner` on the decimated samples, FIR interpolation
    back, and an :class:`OutputQueue` prefilled with ``lookahead`` inner samples so every call
    returns as many samples as it got. ``latency`` = that prefill + both FIR delays."""

    inner_rate = 16000
    taps = 63
    hop_lookahead = 0  # > 0: the look-ahead is exactly one inner hop of this size (see fit_blocks)

    def __init__(self, rate: int, lookahead: int) -> None:
        self.rate = rate
        self.factor = rate // self.inner_rate if rate % self.inner_rate == 0 else 0
        if not self.factor:
            raise ValueError(
                f"{type(self).__name__} needs a stream rate that is a multiple of {self.inner_rate} Hz, got {rate}"
            )
        cutoff = 0.45 * self.inner_rate
        self._fir = signal.firwin(self.taps, cutoff, fs=rate) if self.factor > 1 else np.ones(1)
        delay = (self.taps - 1) if self.factor > 1 else 0  # decimator + interpolator group delays
        self._prefill = self.factor * lookahead
        self._delay, self._unit = delay, 0
        self.latency = self._prefill + delay
        self.reset()

    def fit_blocks(self, block: int) -> None:
        """Promise that every block will be ``block`` stream samples. A voice whose look-ahead is
        exactly one inner hop (``hop_lookahead``) then needs none when blocks hold whole hops: each
        call completes its hops, so their output leaves at once (−1 hop of latency). Other block
        sizes, or voices without that property, keep the look-ahead. Resets the stream."""
        hop = self.hop_lookahead
        if hop and block % (self.factor * hop) == 0:
            self._prefill, self._unit = 0, self.factor * hop
            self.latency = self._delay
            self.reset()

    def reset(self) -> None:
        """Forget everything (device change): resamplers, queued output, the voice's own state."""
        self._down = _Decimator(self.factor, self._fir)
        self._up = _Interpolator(self.factor, self._fir)
        self._out = OutputQueue(self._prefill)
        self._taken = 0  # stream samples answered so far
        self._last_call = 0  # the size of the last call (what ``prepare`` expects next)
        self._reset_inner()

    def _reset_inner(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _inner(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """Inner-rate samples in → the inner-rate samples now complete (any count)."""
        raise NotImplementedError

    # A voice that computes its output in pieces (a pull voice) overrides ``_feed`` to only keep its
    # input and ``_produce`` to compute until the output due is out; ``prepare`` then lets a worker
    # compute ahead, after it has handed the caller its answer (:class:`~ravasd.audio.neural.offload.Offloaded`).

    def _feed(self, x: np.ndarray) -> None:
        """Inner-rate input in; a push voice (the default) emits everything it completes at once."""
        self._emit(self._inner(x))

    def _produce(self, due: int) -> None:
        """Compute until ``due`` inner samples have been emitted in all (a pull voice; no-op here)."""

    def _emit(self, y: np.ndarray) -> None:
        """Inner-rate output (in order) → the interpolator → the output queue."""
        self._out.push(np.asarray(self._up(y), np.float32))

    def _due(self, taken: int) -> int:
        """Inner samples that must have been emitted for ``taken`` stream samples to be answered."""
        return max(0, -(-(taken - self._prefill) // self.factor))

    def process_samples(self, x: np.ndarray) -> np.ndarray:
        """Stream-rate samples in → the same number out (delayed by ``latency``)."""
        if self._unit and len(x) % self._unit:
            # built for whole hops per block (no look-ahead): a partial hop cannot be answered
            # now. Raising lets the runner fail closed (silence, rebuild) instead of drifting.
            raise ValueError(
                f"{type(self).__name__} was set up for blocks of whole {self._unit}-sample "
                f"hops and got {len(x)} samples"
            )
        x = sanitize(x)
        self._feed(self._down(x))
        self._taken += len(x)
        self._last_call = len(x)
        self._produce(self._due(self._taken))
        return np.clip(self._out.pop(len(x)), -1.0, 1.0)

    def prepare(self, busy=lambda: False) -> None:
        """Compute ahead what the next call (of the last call's size) will need, and any input-side
        work already possible, stopping early once ``busy()`` is true (a caller waits). Called by a
        worker thread between calls; output is unchanged by it."""

    def process(self, block: RawAudio) -> AnonAudio:
        return AnonAudio(self.process_samples(block.samples), block.rate, block.ts)

    def close(self) -> None:
        pass


class FrameVoice(InnerRateVoice):
    """Base class: subclasses set ``inner_rate``, ``frame``, ``hop`` and implement ``transform``.

    ``transform(frame)`` receives one analysis frame (already windowed, ``frame`` samples at the
    inner rate) and returns the synthesis frame of the same length; frames are overlap-added with
    ``hop``. The analysis window must overlap-add to 1 at that hop (periodic Hann, hop = frame/2).
    """

    frame = 320
    hop = 160

    def __init__(self, rate: int) -> None:
        self.window = signal.get_window("hann", self.frame).astype(np.float32)  # periodic: OLA sums to 1
        super().__init__(rate, self.frame + self.hop + 1)

    def _reset_inner(self) -> None:
        self._in = np.zeros(0, np.float32)
        self._ola = np.zeros(self.frame, np.float32)

    def transform(self, frame: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _inner(self, inner: np.ndarray) -> np.ndarray:
        self._in = np.concatenate([self._in, inner])
        done = []
        while len(self._in) >= self.frame:
            y = self.transform(self._in[: self.frame] * self.window)
            self._ola += y.astype(np.float32)
            done.append(self._ola[: self.hop].copy())
            self._ola = np.concatenate([self._ola[self.hop :], np.zeros(self.hop, np.float32)])
            self._in = self._in[self.hop :]
        return np.concatenate(done) if done else np.zeros(0, np.float32)
