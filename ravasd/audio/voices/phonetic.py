"""Phonetic voices: the output is chosen by *which sound* the phone encoder hears, never by the
speaker's spectrum.

Every 10 ms the phone encoder (:mod:`ravasd.audio.phonetic.encoder`) reduces the input to its last
GRU layer's state — what its phone posteriors are read from. A frame's **key** is that state
(length-normalised) beside the state :data:`CONTEXT` frames earlier (the transition into the sound),
projected onto the pool's 48 principal directions. The pool holds the same keys computed on the
**target's** own speech, with the target's vocoder envelopes of each frame's two 5 ms hops. Per hop:

- envelope: the mean of the :data:`K` target frames nearest in key (the hop of the same parity),
  smoothed across hops (:data:`SMOOTH`), its spread around the target's mean envelope then widened per
  coefficient by what averaging and smoothing took from it (the pool's ``spread``,
  :func:`spread_gain`): averaged envelopes have blunter formants than any one frame of the target;
- loudness: the target's loudness contour of those frames on the speaker's running level and range
  (as :mod:`.target` does: the speaker's syllable-by-syllable loudness is an identity cue);
- F0: the speaker's log-F0 standardised by its running statistics, placed on the target's mean and
  deviation (:data:`PROSODY`: the whole standardised contour on the target's own range); voicing is binary.

Nothing of the speaker's spectrum reaches the output: the encoder reduces it to phonetic state, and
every envelope is an average of the target's. The encoder looks 25 ms past its frame, so each hop
waits for its frame: the voice's look-ahead is :data:`LOOKAHEAD` inner samples (35 ms). Key, K,
context and smoothing were chosen on the dev speakers (README). Pools ship in the package
(``targets/<name>.phon.npz``), built by :mod:`ravasd.evaluation.build_phonetic_pools`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..phonetic import encoder as enc
from .base import InnerRateVoice
from .target import POOL_DIR, TargetPitch, _running, unreadable_pool
from .vocoder import HOP, Features, SourceFilterVoice, ceps_to_env

CONTEXT = 2  # frames (20 ms) back for the transition part of the key
#: Vocoder hops between a frame's start and its first hop: frame j renders hops 2 j + SHIFT and the
#: next, in the pool as in the voice. Its window centres 12.5 ms in and the vocoder's analysis of a hop
#: lags the hop, so SHIFT 2 looked better paired and needs 10 ms less look-ahead; on dev it lost 3 points
#: of WER, SHIFT 3 six (the GRU's state lags its window): 0 (README).
SHIFT = 0
W_CONTEXT = 0.6
K = 16
SMOOTH = 0.5  # one-pole smoothing of the chosen envelope cepstra from hop to hop
#: Share of the speaker's standardised log-F0 excursions placed on the target's deviation. Chosen on dev
#: (README): 1 (the target's own range) against the spectral voices' 0.5 raised DNSMOS 2.26 → 2.45 at the
#: same words, for 1.3 points of lazy-informed EER (the shape carries a little of the speaker); the rise
#: went on past the target's range (1.5: 2.57), which is not taken.
PROSODY = 1.0
#: Inner samples of look-ahead: frame j (hops 2j+SHIFT, 2j+SHIFT+1) needs audio up to 160 j + 560,
#: 480 − 80 SHIFT past its first hop's end; the output queue starts with one hop more, so it never runs short.
LOOKAHEAD = enc.HOP * enc.AHEAD + enc.WIN - SHIFT * HOP
LOOKAHEAD_MS = 1000 * LOOKAHEAD // enc.RATE
PRIOR_LEVEL = (np.log(0.05), 1.0)  # the speaker's log loudness before the first hop (decays)
#: :func:`spread_gain`'s measurement: stretches of the target's frames run through the frame choice, each
#: this many frames long, the frames within that distance of the one chosen for held out (its sentence).
SPREAD_STRETCHES, SPREAD_FRAMES, SPREAD_SEED = 10, 300, 0


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-6)


def frame_key(now: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """(2 H,) float32 key of a frame from its encoder state and the state CONTEXT frames earlier."""
    return np.concatenate([_unit(now), W_CONTEXT * _unit(earlier)]).astype(np.float32)


def keys(hidden: np.ndarray) -> np.ndarray:
    """(n, 2 H) float32 keys of consecutive frames' encoder states (n, H), as the voice streams
    them: before the first frame, the context is the first frame."""
    earlier = hidden[np.maximum(np.arange(len(hidden)) - CONTEXT, 0)]
    return np.concatenate([_unit(hidden), W_CONTEXT * _unit(earlier)], axis=1).astype(np.float32)


@dataclass(frozen=True)
class PhonePool:
    """A target's frames: keys searched as ``(key − center) @ proj``."""

    name: str
    keys: np.ndarray  # (N, D) projected keys of the target's speech frames
    center: np.ndarray  # (2 H,)
    proj: np.ndarray  # (2 H, D)
    env: np.ndarray  # (N, 2, ENV_CEPS) envelope cepstra of each frame's even and odd hop
    level: np.ndarray  # (N, 2) their log RMS, standardised over the target's speech
    lf0_mean: float  # log-F0 statistics of the target's voiced hops
    lf0_std: float
    spread: np.ndarray | None = None  # (ENV_CEPS,) :func:`spread_gain` of this pool (None: not widened)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_kn2", np.sum(self.keys**2, axis=1))
        object.__setattr__(self, "env_mean", self.env.reshape(-1, self.env.shape[-1]).mean(axis=0))

    def nearest(self, key: np.ndarray, k: int) -> np.ndarray:
        """Rows of the ``k`` frames nearest to ``key`` (2 H,) — an exact search."""
        return self._nearest((key - self.center) @ self.proj, k)

    def _nearest(self, projected: np.ndarray, k: int, exclude: slice | None = None) -> np.ndarray:
        d = self._kn2 - 2 * (self.keys @ projected)
        if exclude is not None:
            d[exclude] = np.inf
        return np.argpartition(d, k)[:k]


def spread_gain(pool: PhonePool, k: int = K) -> np.ndarray:
    """(ENV_CEPS,) per coefficient, the target's spread of envelope cepstra over the spread left after
    the voice's frame choice (the mean of ``k`` nearest, smoothed across hops): measured on
    :data:`SPREAD_STRETCHES` seeded stretches of the target's own frames, each frame's neighbours sought
    beyond :data:`SPREAD_FRAMES` frames of it (its own sentence held out, as any input's is). Coefficient 0
    (the level) is 1. Deterministic; ≈ 1.5 s; :mod:`ravasd.evaluation.build_phonetic_pools` stores it in the
    pool. Restoring this spread — and no more, like :data:`PROSODY`'s target range — is what the voice does
    with it (README; dev, `tenor-phonetic`: DNSMOS 2.45 → 2.54, WER 22.5 → 19.5 %)."""
    n = len(pool.keys)
    starts = np.random.default_rng(SPREAD_SEED).choice(n - SPREAD_FRAMES, SPREAD_STRETCHES, replace=False)
    out = []
    for s in starts:
        prev = None
        for j in range(s, s + SPREAD_FRAMES):
            rows = pool._nearest(pool.keys[j], k, slice(max(0, j - SPREAD_FRAMES), j + SPREAD_FRAMES))
            for parity in (0, 1):
                c = pool.env[rows, parity].mean(axis=0)
                prev = c if prev is None else (1 - SMOOTH) * c + SMOOTH * prev
                out.append(prev)
    every = pool.env.reshape(-1, pool.env.shape[-1])
    gain = every.std(axis=0) / (np.std(out, axis=0) + 1e-9)
    gain[0] = 1.0
    return gain.astype(np.float32)


def delta(a: np.ndarray) -> np.ndarray:
    """int8 rows → their row-to-row differences mod 256 (uint8): neighbouring frames are alike, so the
    pool file compresses ~15 % smaller; lossless (:func:`undelta`)."""
    u = a.view(np.uint8)
    return np.diff(u, axis=0, prepend=np.zeros_like(u[:1])).astype(np.uint8)


def undelta(d: np.ndarray) -> np.ndarray:
    return np.cumsum(d, axis=0, dtype=np.uint8).view(np.int8)


_CACHE: dict[Path, PhonePool] = {}


def pool_from_arrays(name: str, z) -> PhonePool:
    """The pool held by the arrays ``z`` (a pool file's, or :mod:`ravasd.evaluation.build_phonetic_pools`'
    before it writes them), dequantised as the voice reads them; no ``spread`` array: not widened."""
    return PhonePool(
        name,
        undelta(z["keys"]).astype(np.float32) * z["key_scale"],
        z["center"].astype(np.float32),
        z["proj"].astype(np.float32),
        undelta(z["env"]).astype(np.float32) * z["env_scale"],
        z["level"].astype(np.float32),
        float(z["lf0"][0]),
        float(z["lf0"][1]),
        z["spread"].astype(np.float32) if "spread" in z else None,
    )


def load_pool(name: str, path: Path | None = None) -> PhonePool:
    """The shipped pool of target ``name`` (or the file ``path``); a clear error when unreadable."""
    path = path or POOL_DIR / f"{name}.phon.npz"
    if path in _CACHE:
        return _CACHE[path]
    try:
        with np.load(path) as z:
            pool = pool_from_arrays(name, z)
        h = enc.shipped().out_w.shape[1]
        if (
            pool.proj.shape != (2 * h, pool.keys.shape[1])
            or pool.env.shape[:2] != (len(pool.keys), 2)
            or pool.spread is None
            or pool.spread.shape != pool.env.shape[2:]
        ):
            raise ValueError("its arrays do not fit this version of ravasd")
    except (OSError, KeyError, ValueError, IndexError) as err:
        raise unreadable_pool("phonetic voice", name, path, err, "ravasd.evaluation.build_phonetic_pools") from None
    _CACHE[path] = pool
    return pool


class PhoneticVoice(SourceFilterVoice):
    """Any speaker → the target whose pool is ``pool`` (see the module doc). Called from the audio
    worker's convert thread; streamed == offline for any block size; latency = LOOKAHEAD inner
    samples + the resamplers'."""

    hop_lookahead = 0  # the look-ahead is the encoder's, not one hop

    def __init__(self, rate: int, pool: PhonePool, k: int = K) -> None:
        self.pool, self.k = pool, k
        InnerRateVoice.__init__(self, rate, LOOKAHEAD)

    def reset_mapping(self) -> None:
        self._phones = enc.PhoneStream()
        self._states: list[np.ndarray] = []  # encoder states of frames from self._first on
        self._first = 0
        self._t = 0  # the next hop to synthesise
        # the SHIFT hops before the first frame: the frames nearest to the encoder's start (zero) state
        self._rows = self.pool.nearest(np.zeros_like(self.pool.center), self.k)
        self._prev = None  # the last hop's envelope cepstra (smoothing)
        self._pitch = TargetPitch(self.pool.lf0_mean, self.pool.lf0_std, PROSODY)
        self._emu, self._evar = PRIOR_LEVEL[0], PRIOR_LEVEL[1] ** 2
        self._ne = 0

    def _inner(self, x: np.ndarray) -> np.ndarray:
        self._phones.push(x)
        self._states.extend(self._phones.hidden)
        self._pending = np.concatenate([self._pending, x])
        hops = []
        while len(self._pending) >= HOP and (self._t - SHIFT) // 2 < self._first + len(self._states):
            j, parity = divmod(self._t - SHIFT, 2)
            if j >= 0 and parity == 0:  # one search per frame: both its hops take those frames
                now, earlier = self._states[j - self._first], self._states[max(j - CONTEXT, 0) - self._first]
                self._rows = self.pool.nearest(frame_key(now, earlier), self.k)
            hops.append(self._hop(self._pending[:HOP]))
            self._pending = self._pending[HOP:]
            self._t += 1
            drop = max(0, (self._t - SHIFT) // 2 - CONTEXT - self._first)
            if drop:
                del self._states[:drop]
                self._first += drop
        return np.concatenate(hops) if hops else np.zeros(0)

    def map(self, feat: Features) -> tuple[np.ndarray, float, float]:
        rows, parity = self._rows, (self._t - SHIFT) % 2
        c = self.pool.env[rows, parity].mean(axis=0)
        if self._prev is not None:
            c = (1 - SMOOTH) * c + SMOOTH * self._prev
        self._prev = c
        if self.pool.spread is not None:
            c = self.pool.env_mean + self.pool.spread * (c - self.pool.env_mean)
        self._ne += 1
        self._emu, self._evar = _running(self._emu, self._evar, np.log(feat.rms), self._ne)
        rms = float(np.exp(self._emu + np.sqrt(self._evar) * self.pool.level[rows, parity].mean()))
        return ceps_to_env(c), self._pitch(feat.f0), rms

    def _excitation(self, f0: float, ap: float) -> np.ndarray:
        return super()._excitation(f0, 0.0 if f0 > 0 else 1.0)  # binary voicing
