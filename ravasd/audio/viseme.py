"""Visemes from the converted voice: which lip shape the vowel being spoken wants.

The avatar's mouth follows the voice when no face is seen. Which shape — open ("ah"), mid ("eh",
"uh", "er"), spread ("ee", "ih", "ay") or round ("oo", "oh") — is read from the spectrum of the
*converted* voice by a small model this project trains itself (``avatars/train_visemes.py``, data
generated there; weights in ``viseme.json`` beside this file).

Features, per 10 ms hop over a 32 ms window: log energies of 24 mel bands (100 Hz–5 kHz), each
normalised by its running mean and spread over the voice's recent speech (a few seconds). That
normalisation is why one model reads every voice: a converter's fixed colouring (a tenor's darker
spectrum, a vocoder's tilt) is a per-band offset and scale, and it divides out; what is left is how
this frame differs from this voice's average — the vowel.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np

VISEMES = ("open", "mid", "spread", "round")
BANDS, FMIN, FMAX = 24, 100.0, 5000.0
WIN_S, HOP_S = 0.032, 0.010
TAU_S = 3.0  # running normalisation's time constant, seconds of speech
VOICED_DB = 25.0  # a frame within this many dB of the recent peak counts as speech
PRIOR_SD_DB = 8.0  # the normalisation's spread per band before a voice has said much


def _mel(f: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + f / 700.0)


def mel_bank(rate: int, n_fft: int) -> np.ndarray:
    """(BANDS, n_fft//2+1) triangular mel filters from FMIN to FMAX (FMAX capped below Nyquist)."""
    f = np.fft.rfftfreq(n_fft, 1.0 / rate)
    top = min(FMAX, 0.45 * rate)
    edges = 700.0 * (10 ** (np.linspace(_mel(np.array(FMIN)), _mel(np.array(top)), BANDS + 2) / 2595.0) - 1.0)
    bank = np.zeros((BANDS, len(f)))
    for i in range(BANDS):
        lo, mid, hi = edges[i : i + 3]
        bank[i] = np.clip(np.minimum((f - lo) / (mid - lo), (hi - f) / (hi - mid)), 0, None)
    return bank / np.maximum(bank.sum(1, keepdims=True), 1e-12)


class VisemeFeatures:
    """Streaming features of one voice at ``rate`` Hz: ``push(samples)`` returns the (n, BANDS)
    normalised frames completed by those samples, and whether each is speech (n,) — loud enough
    against the recent peak. One instance per stream (it keeps the window and the running
    statistics); not thread-safe."""

    def __init__(self, rate: int, prior_sd: np.ndarray | None = None) -> None:
        self.rate = rate
        self.win, self.hop = int(WIN_S * rate), int(HOP_S * rate)
        self.n_fft = 1 << int(np.ceil(np.log2(self.win)))
        self.bank = mel_bank(rate, self.n_fft)
        self.window = np.hanning(self.win)
        self._buf = np.zeros(0, np.float32)
        self.mean: np.ndarray | None = None  # set by the first frame of speech
        sd = np.full(BANDS, PRIOR_SD_DB) if prior_sd is None else np.asarray(prior_sd, float)
        self.var = sd**2
        self.peak = -120.0
        self._alpha = 1.0 - np.exp(-HOP_S / TAU_S)

    def push(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._buf = np.concatenate([self._buf, np.asarray(samples, np.float32)])
        frames, voiced = [], []
        while len(self._buf) >= self.win:
            x = self._buf[: self.win].astype(np.float64)
            self._buf = self._buf[self.hop :]
            rms = float(np.sqrt(np.mean(x * x)))
            spec = np.abs(np.fft.rfft(x * self.window, self.n_fft)) ** 2
            band = 10.0 * np.log10(self.bank @ spec / self.n_fft + 1e-10)
            db = 20.0 * np.log10(max(rms, 1e-6))
            # the recent peak falls 6 dB per second, so a quieter stretch still counts as speech
            self.peak = max(db, self.peak - 6.0 * HOP_S)
            speech = db > -60.0 and db > self.peak - VOICED_DB
            if speech:
                if self.mean is None:
                    self.mean = band.copy()
                d = band - self.mean
                self.mean += self._alpha * d
                self.var = (1 - self._alpha) * (self.var + self._alpha * d * d)
            # before the first speech there is no average to differ from: a neutral frame
            frames.append(np.zeros(BANDS) if self.mean is None else (band - self.mean) / np.sqrt(self.var + 1.0))
            voiced.append(speech)
        if not frames:
            return np.zeros((0, BANDS)), np.zeros(0, bool)
        return np.array(frames), np.array(voiced)


class VisemeModel:
    """The trained classifier: ``probs(features)`` → (n, 4) probabilities over :data:`VISEMES`.
    ``path``: a weights file as ``avatars/train_visemes.py`` writes it (default: the shipped one)."""

    def __init__(self, path: str | None = None) -> None:
        d = json.loads((Path(path) if path else resources.files(__package__).joinpath("viseme.json")).read_text())
        self.prior_sd = np.array(d["prior_sd"])
        self.layers = [(np.array(w), np.array(b)) for w, b in d["layers"]]

    def probs(self, feats: np.ndarray) -> np.ndarray:
        h = np.asarray(feats, float)
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.tanh(h)
        e = np.exp(h - h.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def features(self, rate: int) -> VisemeFeatures:
        return VisemeFeatures(rate, self.prior_sd)
