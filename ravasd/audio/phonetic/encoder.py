"""The phone encoder: 16 kHz speech → per-10 ms posteriors over :data:`PHONES`, streaming.

Features are 40 log-mel bands of 25 ms Hann windows every 10 ms (frame ``t`` covers samples
``[160 t, 160 t + 400)``, the signal zero-padded at its end), normalised by the training set's
mean and deviation. The model: a convolution seeing frames ``t-2 … t+1``, a causal one seeing
``t-2 … t``, two GRU layers and a softmax. Frame ``t``'s posterior needs audio up to sample
``160 (t + 1) + 400``: a look-ahead of 25 ms past the frame's end (:data:`LOOKAHEAD_S`).
Runs on numpy; streamed and whole-signal outputs are equal (one code path). The weights
(``phones.npz``, float16, ~2 MB) come from :mod:`ravasd.evaluation.phonetic.train`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter1d

from ...errors import RavasError

RATE = 16000
HOP = 160
WIN = 400
N_FFT = 512
N_MELS = 40
AHEAD = 1  # feature frames the first convolution looks ahead
BACK = 2  # and back
SPAN = BACK + AHEAD + 1  # frames the first convolution sees
LOOKAHEAD_S = (AHEAD * HOP + WIN - HOP) / RATE
#: Output classes: IPA as espeak-ng's en-us voice speaks it, folded; ``sil`` is non-speech.
PHONES = [
    "sil",
    "t",
    "n",
    "ɪ",
    "s",
    "d",
    "ə",
    "ð",
    "l",
    "k",
    "z",
    "æ",
    "ɹ",
    "ɛ",
    "w",
    "aɪ",
    "m",
    "ʌ",
    "iː",
    "ɚ",
    "b",
    "f",
    "v",
    "p",
    "oʊ",
    "eɪ",
    "ŋ",
    "uː",
    "ɡ",
    "h",
    "aʊ",
    "ʃ",
    "ʊ",
    "ɔː",
    "dʒ",
    "j",
    "θ",
    "tʃ",
    "ɑː",
    "ʒ",
    "ɔɪ",
]
CLASSES = len(PHONES)


@lru_cache(maxsize=8)
def mel_filters(warp: float = 1.0) -> np.ndarray:
    """(N_MELS, N_FFT//2+1) triangular HTK-mel filters over 20–7600 Hz; ``warp`` scales the
    frequency axis (a vocal-tract-length perturbation for training; 1.0 at run time)."""

    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(20.0), mel(7600.0), N_MELS + 2))
    freqs = np.linspace(0, RATE / 2, N_FFT // 2 + 1) * warp
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    fb = np.maximum(0.0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))
    return fb.astype(np.float32)


_WINDOW = np.hanning(WIN + 1)[:-1].astype(np.float32)


def log_mel(frames: np.ndarray, warp: float = 1.0) -> np.ndarray:
    """(n, WIN) sample frames → (n, N_MELS) float32 log-mel energies."""
    spec = np.abs(np.fft.rfft(frames * _WINDOW, N_FFT)) ** 2
    return np.log(spec.astype(np.float32) @ mel_filters(warp).T + 1e-6).astype(np.float32)


def frame(x: np.ndarray) -> np.ndarray:
    """(ceil(len/HOP), WIN) frames of ``x``, zero-padded at the end."""
    n = -(-len(x) // HOP)
    padded = np.zeros(n * HOP + WIN, np.float32)
    padded[: len(x)] = x
    return np.lib.stride_tricks.sliding_window_view(padded, WIN)[::HOP][:n]


@dataclass(frozen=True)
class Weights:
    """The model's parameters (float32) and the feature normalisation."""

    mean: np.ndarray
    std: np.ndarray
    conv1_w: np.ndarray  # (C, N_MELS, SPAN)
    conv1_b: np.ndarray
    conv2_w: np.ndarray  # (C, C, 3)
    conv2_b: np.ndarray
    gru: tuple  # per layer: (w_ih (3H, in), w_hh (3H, H), b_ih, b_hh), gates r, z, n (torch order)
    out_w: np.ndarray  # (CLASSES, H)
    out_b: np.ndarray

    @classmethod
    def load(cls, path: Path | str) -> Weights:
        try:
            with np.load(path) as z:
                a = {k: z[k].astype(np.float32) for k in z.files}
            layers = int(a["layers"])
            gru = tuple(
                (a[f"gru{i}_w_ih"], a[f"gru{i}_w_hh"], a[f"gru{i}_b_ih"], a[f"gru{i}_b_hh"]) for i in range(layers)
            )
            if a["conv1_w"].shape[2] != SPAN:
                raise ValueError(
                    f"its first convolution spans {a['conv1_w'].shape[2]} frames, this ravasd's "
                    f"{SPAN} (a model for another look-ahead)"
                )
            return cls(
                a["mean"], a["std"], a["conv1_w"], a["conv1_b"], a["conv2_w"], a["conv2_b"], gru, a["out_w"], a["out_b"]
            )
        except (OSError, KeyError, ValueError) as err:
            raise RavasError(
                f"the phone model {path} cannot be read ({err}).",
                "reinstall ravasd, or rebuild it: python -m ravasd.evaluation.phonetic.train",
            ) from None


@lru_cache(maxsize=1)
def shipped() -> Weights:
    """The phone model inside the package."""
    return Weights.load(Path(str(resources.files(__package__).joinpath("phones.npz"))))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))  # no overflow: float32 saturates long before


def _rows(f, x: np.ndarray) -> np.ndarray:
    """``f`` applied to each row of ``x`` alone (as a 1-row array), concatenated. BLAS picks its kernel
    by a product's shape, so a frame computed in a batch of 3 can differ in the last bit from the same
    frame in a batch of 40; one row at a time makes every blocking of the stream — and the whole
    signal — give bit-identical results (a near tie in a phonetic voice's nearest frames must not
    depend on how the audio was cut)."""
    return np.concatenate([f(x[k : k + 1]) for k in range(len(x))]) if len(x) else f(x)


class PhoneStream:
    """One stream's state. ``push(samples)`` → posteriors (n, CLASSES) of the frames that became
    computable; ``flush()`` → the rest (the signal's end zero-padded). After either, :attr:`hidden`
    holds those frames' last GRU layer output (n, H): what the phonetic voices key on. One thread."""

    def __init__(self, weights: Weights | None = None) -> None:
        self.w = weights or shipped()
        self._audio = np.zeros(0, np.float32)  # samples from the next feature frame's start on
        self._total = 0  # samples pushed
        self._frames = 0  # feature frames made
        c = self.w.conv1_b.shape[0]
        # normalised features from (next output frame - BACK) on; zeros before the signal's start
        self._buf = np.zeros((BACK, N_MELS), np.float32)
        self._c1 = np.zeros((2, c), np.float32)  # the last two conv1 outputs
        self._h = [np.zeros(wh.shape[1], np.float32) for _, wh, _, _ in self.w.gru]
        self.hidden = np.zeros((0, self.w.out_w.shape[1]), np.float32)

    def push(self, samples: np.ndarray) -> np.ndarray:
        self._audio = np.concatenate([self._audio, np.asarray(samples, np.float32).reshape(-1)])
        self._total += len(samples)
        n = max(0, (len(self._audio) - WIN) // HOP + 1)
        return self._advance(n, final=False)

    def flush(self) -> np.ndarray:
        n = -(-self._total // HOP) - self._frames
        self._audio = np.concatenate(
            [self._audio, np.zeros(max(0, (n - 1) * HOP + WIN - len(self._audio)), np.float32)]
        )
        return self._advance(n, final=True)

    def _advance(self, n: int, final: bool) -> np.ndarray:
        if n > 0:
            frames = np.lib.stride_tricks.sliding_window_view(self._audio[: (n - 1) * HOP + WIN], WIN)[::HOP]
            self._audio = self._audio[n * HOP :]
            self._frames += n
            feats = _rows(lambda f: (log_mel(f) - self.w.mean) / self.w.std, frames)
            self._buf = np.concatenate([self._buf, feats])
        if final:  # the first convolution's look-ahead past the end is zero padding
            self._buf = np.concatenate([self._buf, np.zeros((AHEAD, N_MELS), np.float32)])
        ready = len(self._buf) - SPAN + 1
        if ready <= 0:
            self.hidden = np.zeros((0, self.w.out_w.shape[1]), np.float32)
            return np.zeros((0, CLASSES), np.float32)
        cols = np.lib.stride_tricks.sliding_window_view(self._buf, SPAN, axis=0)  # (ready, N_MELS, SPAN)
        self._buf = self._buf[ready:]
        c1 = np.maximum(0.0, _rows(lambda c: np.einsum("tik,oik->to", c, self.w.conv1_w), cols) + self.w.conv1_b)
        hist = np.concatenate([self._c1, c1])
        self._c1 = hist[-2:]
        cols2 = np.lib.stride_tricks.sliding_window_view(hist, 3, axis=0)
        x = np.maximum(0.0, _rows(lambda c: np.einsum("tik,oik->to", c, self.w.conv2_w), cols2) + self.w.conv2_b)
        for i, (w_ih, w_hh, b_ih, b_hh) in enumerate(self.w.gru):
            gi = _rows(lambda r, w=w_ih: r @ w.T, x) + b_ih
            h = self._h[i]
            out = np.empty((len(x), w_hh.shape[1]), np.float32)
            hsize = w_hh.shape[1]
            for t in range(len(x)):
                gh = w_hh @ h + b_hh
                r = _sigmoid(gi[t, :hsize] + gh[:hsize])
                z = _sigmoid(gi[t, hsize : 2 * hsize] + gh[hsize : 2 * hsize])
                cand = np.tanh(gi[t, 2 * hsize :] + r * gh[2 * hsize :])
                h = (1.0 - z) * cand + z * h
                out[t] = h
            self._h[i] = h
            x = out
        self.hidden = x
        logits = _rows(lambda r: r @ self.w.out_w.T, x) + self.w.out_b
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def posteriors(x: np.ndarray, weights: Weights | None = None) -> np.ndarray:
    """(ceil(len(x)/HOP), CLASSES) posteriors of a whole 16 kHz signal (the streamed result)."""
    s = PhoneStream(weights)
    return np.concatenate([s.push(x), s.flush()])


def hidden(x: np.ndarray, weights: Weights | None = None) -> np.ndarray:
    """(ceil(len(x)/HOP), H) last GRU layer output of a whole 16 kHz signal (the streamed result)."""
    s = PhoneStream(weights)
    s.push(x)
    first = s.hidden
    s.flush()
    return np.concatenate([first, s.hidden])


#: Frames the posteriors are averaged over before :func:`decode` picks the best class (chosen on the
#: dev speakers: 1, 3 and 5 frames gave espeak-ng PER 56, 32 and 27 %, Kokoro mixtures 86, 68, 62 %).
DECODE_SMOOTH = 5


def decode(post: np.ndarray, smooth: int = DECODE_SMOOTH) -> list[int]:
    """Frame posteriors → phone sequence (indices into :data:`PHONES`): posteriors averaged over
    ``smooth`` centred frames, best class per frame, repeats merged, ``sil`` dropped. A measure of
    what the posteriors carry (offline: the average looks 20 ms further ahead)."""
    if smooth > 1 and len(post):
        post = uniform_filter1d(post, smooth, axis=0, mode="nearest")
    best = post.argmax(axis=1)
    keep = np.concatenate([[True], best[1:] != best[:-1]])
    return [int(b) for b in best[keep] if b != 0]
