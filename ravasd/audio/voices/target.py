"""Target voices: every speaker is mapped onto one target voice, with no learned weights.

kNN-VC's principle — replace each frame of the input by the nearest frames of the target's own
speech — needs a matching key that says *which sound* is spoken, not *who* speaks it; raw
spectra say both, so plain spectral kNN keeps speakers linkable. Here the key is matched against
**reference speakers** instead of the target: many synthetic speakers (:data:`REFERENCE_SPEAKERS`)
read the same sentences as the target, each of their 5 ms hops is aligned to the target's hop
saying the same sound (dynamic time warping over whole sentences, done once when the pool is
built), and the pool stores, per reference hop, its key and the target hop it was aligned to.
At run time, per 5 ms hop:

- the key is the hop's mel-cepstrum (19 coefficients) and log-loudness, standardised by the
  *speaker's own* running mean and deviation (3 s time constant), the same 15 ms earlier, and
  the voicing decision (:func:`match_key`) — computed exactly so for the reference speakers;
- the key is projected onto the 16 directions that best tell the target's sounds apart relative
  to how reference speakers differ saying the same sound (:func:`sound_projection`, a linear
  discriminant computed when the pool is built), and searched there;
- the K nearest reference hops vote with their aligned target hops: the output envelope is the
  average of those target envelopes, so every output spectrum is the target's;
- loudness: the target hops' own loudness contour (vowels loud, consonants soft, as the target
  says them), placed on the speaker's running level and range — the speaker's syllable-by-syllable
  loudness is a strong identity cue (measured: README);
- F0 is moved onto the target's log-F0 mean and deviation with the contour's excursions halved
  (intonation shape kept, the speaker's pitch range gone); voicing is binary (the speaker's
  breathiness is not copied).

Nothing waits for future input: the mapping adds no latency to the vocoder's (:mod:`.vocoder`).

Pools ship in the package (``targets/<name>.npz`` beside this module); they are made by
:mod:`ravasd.evaluation.build_pools` (``python -m ravasd.evaluation.build_pools``), which this run-time module
never imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from scipy import fft

from ...errors import RavasError
from .vocoder import (
    BINS,
    RATE,
    Features,
    SourceFilterVoice,
    ceps_to_env,
)

POOL_DIR = Path(str(resources.files(__package__).joinpath("targets")))

#: name → (flite voice, description). The flite voices are CMU's (BSD-style licence), speaking
#: sentences written for this project: the pools may be redistributed under the project's licence.
TARGETS = {
    "alto": ("slt", "a calm alto (≈170 Hz), from flite's `slt` voice"),
    "tenor": ("awb", "a warm tenor (≈130 Hz), from flite's `awb` voice"),
    "baritone": ("rms", "a low baritone (≈100 Hz), from flite's `rms` voice"),
}

K = 8  # target hops averaged per output hop
PROSODY = 0.5  # fraction of the speaker's log-F0 excursions kept
STATS_HOPS = 600  # time constant of the speaker statistics (hops: 3 s)
WARMUP = 0.25  # weight of the prior at the first hop (decays like a running mean)
PRIOR_LF0 = (np.log(140.0), 0.2)
MEL_CEPS = 20  # mel-cepstral coefficients of the key (the 0th, overall tilt, is left out)
CONTEXT = 3  # the key also holds the hop this many hops back (15 ms)
W_VOICED, W_LEVEL, W_CONTEXT = 2.0, 0.5, 0.7  # key weights (the cepstra weigh 1)
SUBSAMPLE = 4  # pool keeps every 4th reference hop (20 ms apart; measured: every 8th links more)
KEY_STEP = 0.04  # projected keys are stored as int8 multiples of this (±5: 0.3 % of values lie beyond)
LISTS, PROBE = 512, 8  # inverted file: k-means cells, and how many of the closest are searched
SOUNDS, SOUND_DIMS = 256, 16  # the search space: the 16 directions that best tell 256 target sounds apart
ALIGN_CEPS = 20  # pool building: envelope cepstra 1…19 (formants, not finer detail) drive the DTW


def mel_grid(n: int, lo: float = 60.0, hi: float = 7600.0) -> tuple[np.ndarray, np.ndarray]:
    """(n, BINS) linear-interpolation weights that sample a log envelope at ``n`` mel-spaced
    frequencies from ``lo`` to ``hi`` Hz, and those frequencies' positions in bins (n,)."""
    mel = np.linspace(2595 * np.log10(1 + lo / 700), 2595 * np.log10(1 + hi / 700), n)
    pos = 700 * (10 ** (mel / 2595) - 1) / (RATE / 2) * (BINS - 1)
    w = np.zeros((n, BINS))
    i = pos.astype(int)
    w[np.arange(n), i] = 1 - (pos - i)
    w[np.arange(n), np.minimum(i + 1, BINS - 1)] += pos - i
    return w, pos


def _mel_dct(n: int = 40) -> np.ndarray:
    """(MEL_CEPS, BINS): log envelope → mel-cepstrum (the envelope sampled at ``n`` mel-spaced
    frequencies, then a DCT). The envelope is smooth, so sampling stands in for a filterbank."""
    return fft.dct(np.eye(n), norm="ortho", axis=0)[:MEL_CEPS] @ mel_grid(n)[0]


MEL_DCT = _mel_dct()
KEY_DIMS = 2 * (MEL_CEPS - 1) + 2


def raw_key(feat: Features) -> np.ndarray:
    """(MEL_CEPS + 1,): a speech hop's mel-cepstrum and log RMS, before standardisation."""
    return np.concatenate([MEL_DCT @ feat.logspec, [np.log(feat.rms)]])


def match_key(z: np.ndarray, voiced: bool, earlier: np.ndarray) -> np.ndarray:
    """(KEY_DIMS,) float32 key from the standardised raw key ``z`` of this hop and of the hop
    CONTEXT hops earlier (or the oldest one the stream has)."""
    return np.concatenate(
        [z[1:MEL_CEPS], [W_VOICED * voiced, W_LEVEL * z[MEL_CEPS]], W_CONTEXT * earlier[1:MEL_CEPS]]
    ).astype(np.float32)


def _running(mean, var, x, n: int):
    """Exponentially weighted mean/variance after the ``n``-th sample ``x``: like a plain running
    mean (with the prior weighing 1/WARMUP − 1 samples) until the STATS_HOPS time constant takes over."""
    a = max(1.0 / STATS_HOPS, WARMUP / n)
    d = x - mean
    return mean + a * d, (1 - a) * (var + a * d * d)


class Standardiser:
    """Running standardisation of a speaker's raw keys, with the recent ones kept for context.
    The voice and the pool builder use this one class, so keys agree exactly."""

    def __init__(self, mean: np.ndarray, var: np.ndarray) -> None:
        self.mean, self.var = mean.astype(np.float64), var.astype(np.float64)
        self.n = 0
        self.recent: list[np.ndarray] = []

    def key(self, raw: np.ndarray, voiced: bool) -> np.ndarray:
        self.n += 1
        self.mean, self.var = _running(self.mean, self.var, raw, self.n)
        z = (raw - self.mean) / np.sqrt(self.var + 1e-6)
        self.recent = [*self.recent[-CONTEXT:], z]
        return match_key(z, voiced, self.recent[0])


@dataclass(frozen=True)
class Pool:
    """A target's pool (see the module doc). Keys are stored grouped by k-means cell."""

    name: str
    env: np.ndarray  # (M, ENV_CEPS) envelope cepstra of every hop of the target's sentences
    level: np.ndarray  # (M,) their log RMS, standardised over the target's speech hops
    lf0_mean: float  # log-F0 statistics of the target's voiced hops
    lf0_std: float
    key_mean: np.ndarray  # (MEL_CEPS + 1,) prior of the speaker statistics: the reference speakers'
    key_var: np.ndarray
    proj: np.ndarray  # (KEY_DIMS, SOUND_DIMS) the search space (:func:`sound_projection`)
    keys: np.ndarray  # (N, SOUND_DIMS) reference hops' projected keys (float32), grouped by cell
    rows: np.ndarray  # (N,) the target hop (row of env) each is aligned to
    cent: np.ndarray  # (LISTS, SOUND_DIMS) cell centroids
    bounds: np.ndarray  # (LISTS + 1,) keys[bounds[c]:bounds[c+1]] are cell c's

    def nearest(self, q: np.ndarray, k: int) -> np.ndarray:
        """Target rows of the ``k`` reference hops nearest to projected key ``q`` (searched in the PROBE
        closest cells: ~60× less work than a scan, nearly the same neighbours)."""
        cells = np.argpartition(self._cn2 - 2 * self.cent @ q, PROBE)[:PROBE]
        idx = np.concatenate([self._members[c] for c in cells])
        d = self._kn2[idx] - 2 * self.keys[idx] @ q
        best = idx[np.argpartition(d, k)[:k]] if len(idx) > k else idx
        return self.rows[best]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_kn2", np.sum(self.keys**2, axis=1))
        object.__setattr__(self, "_cn2", np.sum(self.cent**2, axis=1))
        object.__setattr__(self, "_members", [np.arange(a, b) for a, b in zip(self.bounds[:-1], self.bounds[1:])])


_CACHE: dict[tuple[Path, str], Pool] = {}


def load_pool(name: str) -> Pool:
    key = (POOL_DIR, name)
    if key in _CACHE:
        return _CACHE[key]
    path = POOL_DIR / f"{name}.npz"
    try:
        with np.load(path) as z:
            f = {
                k: z[k]
                for k in ("env", "level", "lf0", "key_mean", "key_var", "proj", "keys", "rows", "cent", "bounds")
            }
        pool = Pool(
            name,
            f["env"].astype(np.float64),
            f["level"].astype(np.float64),
            float(f["lf0"][0]),
            float(f["lf0"][1]),
            f["key_mean"].astype(np.float64),
            f["key_var"].astype(np.float64),
            f["proj"].astype(np.float32),
            f["keys"].astype(np.float32) * np.float32(KEY_STEP),
            f["rows"].astype(np.int64),
            f["cent"].astype(np.float32),
            f["bounds"].astype(np.int64),
        )
        if (
            pool.proj.shape != (KEY_DIMS, SOUND_DIMS)
            or pool.keys.shape[1] != SOUND_DIMS
            or len(pool.bounds) != LISTS + 1
            or pool.rows.max() >= len(pool.env)
        ):
            raise ValueError("its arrays do not fit this version of ravasd")
    except (OSError, KeyError, ValueError, IndexError) as err:
        raise unreadable_pool("target voice", name, path, err, "ravasd.evaluation.build_pools") from None
    _CACHE[key] = pool
    return pool


def unreadable_pool(kind: str, name: str, path: Path, err: Exception, builder: str) -> RavasError:
    """The error for a shipped pool that cannot be read (damaged install, or from another version)."""
    return RavasError(
        f"{kind} {name!r}: its pool {path} cannot be read ({err}).",
        f"reinstall ravasd, or rebuild the pools: python -m {builder}",
    )


class TargetPitch:
    """A speaker's F0 → the target's: log-F0 standardised by the speaker's running statistics (voiced
    hops only), placed on the target's mean and deviation with the excursions scaled by ``prosody``
    (default :data:`PROSODY`). One per stream; 0 (unvoiced) stays 0."""

    def __init__(self, lf0_mean: float, lf0_std: float, prosody: float = PROSODY) -> None:
        self.target = (lf0_mean, lf0_std)
        self.prosody = prosody
        self._mu, self._var = PRIOR_LF0[0], PRIOR_LF0[1] ** 2
        self._n = 0

    def __call__(self, f0: float) -> float:
        if f0 <= 0:
            return 0.0
        lf0 = np.log(f0)
        self._n += 1
        self._mu, self._var = _running(self._mu, self._var, lf0, self._n)
        z = np.clip((lf0 - self._mu) / np.sqrt(self._var + 1e-6), -3, 3)
        return float(np.exp(self.target[0] + self.prosody * z * self.target[1]))


class TargetVoice(SourceFilterVoice):
    """Map any speaker onto the target ``target`` (a name in :data:`TARGETS`); see the module doc."""

    def __init__(self, rate: int, target: str, k: int = K) -> None:
        self.pool = load_pool(target)
        self.k = k
        super().__init__(rate)

    def reset_mapping(self) -> None:
        self._keys = Standardiser(self.pool.key_mean, self.pool.key_var)
        self._pitch = TargetPitch(self.pool.lf0_mean, self.pool.lf0_std)

    def map(self, feat: Features) -> tuple[np.ndarray, float, float]:
        rows = self.pool.nearest(self._keys.key(raw_key(feat), feat.f0 > 0) @ self.pool.proj, self.k)
        env = ceps_to_env(self.pool.env[rows].mean(axis=0))
        # the target's loudness contour for these sounds, at the speaker's running level and range
        st = self._keys
        rms = float(np.exp(st.mean[MEL_CEPS] + np.sqrt(st.var[MEL_CEPS]) * self.pool.level[rows].mean()))
        return env, self._pitch(feat.f0), rms

    def _excitation(self, f0: float, ap: float) -> np.ndarray:
        return super()._excitation(f0, 0.0 if f0 > 0 else 1.0)  # binary voicing
