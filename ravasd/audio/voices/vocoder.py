"""A low-latency streaming source-filter vocoder: the engine of the pitch/formant and target voices.

Every 5 ms hop (80 samples at the 16 kHz inner rate) the last 25 ms of input are analysed
causally — LPC spectral envelope through an asymmetric window that peaks on the newest hop,
F0 and voicing by YIN over the last 40 ms, hop energy — a subclass *maps* those features
(:meth:`SourceFilterVoice.map`: new envelope, new F0, new loudness — usually the input's), and
the hop is resynthesised from a fresh excitation (pulse train at the new F0 mixed with noise by the
measured aperiodicity) through the new all-pole filter, scaled to that loudness. The speaker's own excitation (glottal
source, jitter, breathiness) never reaches the output, and nothing waits for future input: the
algorithmic latency is one hop plus the resampler's delay (≈ 6.3 ms at 48 kHz), or the resampler's
delay alone (1.3 ms) when every block holds whole hops (:meth:`InnerRateVoice.fit_blocks`).

Streaming state is explicit and depends only on the sample count (block boundaries never
matter), so a streamed run equals the offline run for any block size. Noise comes from a seeded
generator that :meth:`reset` rewinds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft, linalg, signal

from .base import InnerRateVoice

RATE = 16000
HOP = 80  # 5 ms
WIN = 400  # 25 ms LPC analysis window
HIST = 640  # 40 ms of history (YIN needs two periods of 60 Hz)
ORDER = 18
NFFT = 512
BINS = NFFT // 2 + 1
PREEMPH = 0.97
F0_MIN, F0_MAX = 60.0, 400.0
GATE_DB = -52.0  # hop RMS below this (dBFS) is silence: output fades to exact zero
GATE = 10 ** (GATE_DB / 20)
ENV_CEPS = 40  # envelope coefficients kept (DCT of the log spectrum)


def _asym_window() -> np.ndarray:
    """Rises over 20 ms, falls over the newest 5 ms: the envelope follows the current hop."""
    rise, fall = WIN - HOP, HOP
    w = np.concatenate([np.hanning(2 * rise)[:rise], np.hanning(2 * fall)[fall:]])
    return w.astype(np.float64)


WINDOW = _asym_window()
VOICED_LEVEL = 2 * HOP  # voiced loudness: whole pitch periods covering at least 10 ms
LEVEL_WINDOW = np.concatenate(
    [np.hanning(480)[:240], np.ones(HOP)]
)  # unvoiced: rises over 15 ms, flat on the newest hop
_DEEMPH_POWER = 1.0 / np.abs(1 - PREEMPH * np.exp(-1j * np.pi * np.arange(BINS) / (BINS - 1))) ** 2
_DCT_ENV = fft.dct(np.eye(BINS), norm="ortho", axis=0)[:ENV_CEPS]  # (40, 257)


def levinson(r: np.ndarray, order: int = ORDER, correction: float = 1e-4, floor: float = 1e-10) -> np.ndarray | None:
    """Autocorrelation r[0..order] → LPC polynomial a (a[0] = 1), or None when silent (r[0] ≤
    ``floor``) or singular. ``correction``: white noise added (× r[0]) — it keeps the solve well
    conditioned and the filter tame."""
    if r[0] <= floor:
        return None
    r = np.array(r, dtype=np.float64)
    r[0] *= 1.0 + correction
    try:
        a = linalg.solve_toeplitz(r[:order], -r[1 : order + 1])
    except (linalg.LinAlgError, ValueError):
        return None
    return np.concatenate([[1.0], a]) if np.all(np.isfinite(a)) else None


def lpc_logspec(a: np.ndarray) -> np.ndarray:
    """Log power envelope (BINS,) of 1/A(z), up to a constant."""
    return -2.0 * np.log(np.abs(np.fft.rfft(a, NFFT)) + 1e-9)


def logspec_to_lpc(logspec: np.ndarray) -> np.ndarray | None:
    """Log power spectrum (BINS,) → all-pole fit of order :data:`ORDER` (autocorrelation method)."""
    r = np.fft.irfft(np.exp(logspec - logspec.max()), NFFT)[: ORDER + 1]
    return levinson(r)


def env_to_ceps(logspec: np.ndarray) -> np.ndarray:
    return _DCT_ENV @ logspec


def ceps_to_env(ceps: np.ndarray) -> np.ndarray:
    return ceps @ _DCT_ENV


@dataclass
class Features:
    """One hop's analysis. ``logspec`` is None in silence; ``f0`` is 0 when unvoiced."""

    rms: float  # input RMS over the analysis window (linear)
    logspec: np.ndarray | None
    f0: float  # Hz
    aperiodicity: float  # YIN's normalised dip, 0 (periodic) … 1 (noise)


def yin(x: np.ndarray, rate: int = RATE) -> tuple[float, float]:
    """Causal YIN on ``x`` (HIST samples): (f0 Hz or 0, aperiodicity 0…1)."""
    tmax = int(rate / F0_MIN)
    tmin = int(rate / F0_MAX)
    w = len(x) - tmax
    seg = x[len(x) - w - tmax :]
    # d(τ) = Σ_j (ref_j − seg_{tmax−τ+j})² over the newest w samples
    ref = seg[tmax:]
    sq = np.concatenate([[0.0], np.cumsum(seg**2)])
    taus = np.arange(tmax + 1)
    e_ref = sq[tmax + w] - sq[tmax]
    e_lag = sq[tmax - taus + w] - sq[tmax - taus]
    cross = _cross(seg, ref, tmax, w)
    d = e_ref + e_lag - 2 * cross
    d[0] = 0.0
    cum = np.cumsum(d[1:]) / np.arange(1, tmax + 1)
    dn = np.ones(tmax + 1)
    dn[1:] = d[1:] / np.maximum(cum, 1e-12)
    cand = np.nonzero(dn[tmin:tmax] < 0.2)[0]
    if len(cand):
        t = tmin + cand[0]
        while t + 1 < tmax and dn[t + 1] < dn[t]:
            t += 1
    else:
        t = tmin + int(np.argmin(dn[tmin:tmax]))
    ap = float(np.clip(dn[t], 0, 1))
    if 1 <= t < tmax:
        a, b, c = dn[t - 1], dn[t], dn[t + 1]
        den = a - 2 * b + c
        t = t + (0.5 * (a - c) / den if abs(den) > 1e-12 else 0.0)
    return (rate / t if ap < 0.35 else 0.0), ap


def _cross(seg: np.ndarray, ref: np.ndarray, tmax: int, w: int) -> np.ndarray:
    """cross[τ] = Σ_j ref[j]·seg[tmax − τ + j] for τ = 0..tmax (FFT correlation)."""
    n = 1 << int(np.ceil(np.log2(len(seg) + w)))
    c = np.fft.irfft(np.fft.rfft(seg, n) * np.conj(np.fft.rfft(ref, n)), n)
    return c[tmax - np.arange(tmax + 1)]


class Analyzer:
    """Causal per-hop analysis. Feed hops of HOP samples (inner rate); state = history."""

    def __init__(self) -> None:
        self.hist = np.zeros(HIST + 1)

    def _surely_silent(self, hop: np.ndarray) -> bool:
        """True when the hop is below the gate whatever YIN would say: the voiced span is at least
        VOICED_LEVEL and under VOICED_LEVEL + one 60 Hz period, the unvoiced level is bounded by
        its window's energy."""
        longest = VOICED_LEVEL + int(np.ceil(RATE / F0_MIN))
        voiced2 = float(np.sum(self.hist[-longest:] ** 2)) / VOICED_LEVEL
        unvoiced2 = max(
            float(np.dot(LEVEL_WINDOW, self.hist[-len(LEVEL_WINDOW) :] ** 2) / LEVEL_WINDOW.sum()),
            0.25 * float(np.mean(hop.astype(np.float64) ** 2)),
        )
        return max(voiced2, unvoiced2) < GATE**2

    def step(self, hop: np.ndarray) -> Features:
        self.hist = np.concatenate([self.hist[HOP:], hop])
        x = self.hist[1:]
        if self._surely_silent(hop):  # spare YIN in silence: no F0 can lift this hop over the gate
            return Features(0.0, None, 0.0, 1.0)
        f0, ap = yin(x)
        if f0 > 0:
            # Voiced: loudness over the fewest whole pitch periods that cover 10 ms. Over any
            # other span the level follows the glottal pulses and prints the speaker's F0 onto the
            # output as amplitude modulation; a longer span (the 20 ms below) lags onsets and
            # offsets by ~7 ms more (measured through the sound server); a shorter one cost WER.
            n = int(round(RATE / f0 * np.ceil(VOICED_LEVEL * f0 / RATE)))
            rms = float(np.sqrt(np.mean(self.hist[-n:] ** 2)))
        else:
            # Unvoiced: 20 ms, newest hop at full weight; the hop alone counts at half weight so
            # that a consonant after silence is not delayed.
            level = float(np.sqrt(np.dot(LEVEL_WINDOW, self.hist[-len(LEVEL_WINDOW) :] ** 2) / LEVEL_WINDOW.sum()))
            rms = max(level, 0.5 * float(np.sqrt(np.mean(hop.astype(np.float64) ** 2))))
        if rms < GATE:
            return Features(rms, None, 0.0, 1.0)
        frame = (self.hist[-WIN:] - PREEMPH * self.hist[-WIN - 1 : -1]) * WINDOW
        r = np.fft.irfft(np.abs(np.fft.rfft(frame, 1024)) ** 2, 1024)[: ORDER + 1]
        a = levinson(r)
        if a is None:
            return Features(rms, None, 0.0, 1.0)
        return Features(rms, lpc_logspec(a), f0, ap)


class SourceFilterVoice(InnerRateVoice):
    """Streaming vocoder voice (see module doc). Subclasses implement :meth:`map`.

    Contract: ``process(RawAudio) → AnonAudio`` of the same length at the stream rate (16 kHz or a
    multiple), delayed by :attr:`latency` samples; called from the audio worker's convert thread.
    """

    inner_rate = RATE
    seed = 1234
    hop_lookahead = HOP  # analysis is causal: whole hops in → the same hops out (see fit_blocks)

    def __init__(self, rate: int) -> None:
        super().__init__(rate, HOP)

    def _reset_inner(self) -> None:
        self._an = Analyzer()
        self._pending = np.zeros(0)
        self._zi = np.zeros(ORDER)
        self._de = np.zeros(1)
        self._phase = 0.0
        self._voicing = False
        self._gain = 0.0
        self._rng = np.random.default_rng(self.seed)
        self._a = None
        self.reset_mapping()

    def reset_mapping(self) -> None:
        """Subclass hook: clear the mapping's own state."""

    def map(self, feat: Features) -> tuple[np.ndarray, float, float]:  # pragma: no cover - abstract
        """Return (output log envelope (BINS,), output F0 Hz or 0, output RMS) for a non-silent hop;
        the RMS is usually ``feat.rms`` (the input's loudness)."""
        raise NotImplementedError

    # -- synthesis -------------------------------------------------------------------------
    def _excitation(self, f0: float, ap: float) -> np.ndarray:
        noise = self._rng.standard_normal(HOP)
        if f0 <= 0:
            self._voicing = False
            return noise
        period = RATE / f0
        pulses = np.zeros(HOP)
        # voicing onset: first pulse at once, not one period late
        ph = self._phase if self._voicing else 1.0 - 1.0 / period
        self._voicing = True
        for i in range(HOP):  # at most 2 pulses per hop: cheap
            ph += 1.0 / period
            if ph >= 1.0:
                ph -= 1.0
                pulses[i] = np.sqrt(period)  # unit power
        self._phase = ph
        v = float(np.clip(1.0 - 2.0 * ap, 0.0, 1.0))  # 0 → all noise, ≥0.5 aperiodic → mostly pulses
        return np.sqrt(v) * pulses + np.sqrt(1.0 - v) * noise

    def _hop(self, hop: np.ndarray) -> np.ndarray:
        feat = self._an.step(hop)
        if feat.logspec is None:
            target_gain, a, exc = 0.0, self._a, np.zeros(HOP)
            self._rng.standard_normal(2 * HOP)  # the noise sequence advances in silence too
        else:
            env, f0, target_gain = self.map(feat)
            a = logspec_to_lpc(env)
            if a is None:
                a = self._a
            exc = self._excitation(f0, feat.aperiodicity if f0 > 0 else 1.0)
        if a is None:
            self._gain = 0.0
            return np.zeros(HOP)
        self._a = a
        y, self._zi = signal.lfilter([1.0], a, exc, zi=self._zi)
        y, self._de = signal.lfilter([1.0], [1.0, -PREEMPH], y, zi=self._de)
        # Gain from the filter's power gain for unit-power excitation, not from this hop's output:
        # a hop holds 0, 1 or 2 pulses, and levelling each hop would modulate the voice at the
        # beat of hop and pulse rates.
        level = float(np.sqrt(np.mean(_DEEMPH_POWER / (np.abs(np.fft.rfft(a, NFFT)) ** 2 + 1e-12))))
        g = target_gain / level if level > 1e-9 and target_gain > 0 else 0.0
        ramp = np.linspace(self._gain, g, HOP, endpoint=False) if self._gain != g else np.full(HOP, g)
        self._gain = g
        if g == 0.0 and ramp[0] == 0.0:
            self._zi[:] = 0.0  # silence: settle the filter so speech restarts cleanly
            self._de[:] = 0.0
            return np.zeros(HOP)
        return y * ramp

    def _inner(self, x: np.ndarray) -> np.ndarray:
        self._pending = np.concatenate([self._pending, x])
        hops = []
        while len(self._pending) >= HOP:
            hops.append(self._hop(self._pending[:HOP]))
            self._pending = self._pending[HOP:]
        return np.concatenate(hops) if hops else np.zeros(0)
