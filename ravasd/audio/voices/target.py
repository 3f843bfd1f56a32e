"""Target voices: every speaker is mapped onto one target voice, with no learned weights.

Per 5 ms hop the input's spectral envelope (40 cepstral coefficients of the LPC envelope) is
standardised by the *speaker's own* running mean and deviation (3 s time constant, per coefficient)
and re-coloured with the target's — so the long-term spectrum, formant ranges and spectral tilt are
the target's, while the hop-to-hop movement that carries the words stays. F0 is moved onto the
target's log-F0 mean and deviation with the contour's excursions halved (intonation shape kept,
the speaker's pitch range gone); voicing is made binary (the speaker's breathiness is not copied);
the envelope keeps only its 20 smoothest cepstral coefficients (formants yes, finer detail no).

``strength`` > 0 adds kNN-VC's principle on top: the standardised envelope is mixed with the
average of its k nearest frames of the target's own speech (``strength`` = 1: replaced entirely,
so every output spectrum is one the target produced). Measured on the project's corpus (README):
the more kNN, the harder to link and the harder to understand; the named voices use 0.5, the
``-strong`` ones 1.0. The vocoder (:mod:`.vocoder`) resynthesises the result with a
fresh excitation at the input hop's loudness.

Pools live in ``targets/<name>.npz`` beside this file; ``python -m ravasd.audio.voices.target``
rebuilds them from flite's voices reading :data:`~ravasd.evaluation.corpus.POOL_SENTENCES`.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import RavasError
from .vocoder import HOP, Analyzer, Features, SourceFilterVoice, ceps_to_env, env_to_ceps

POOL_DIR = Path(__file__).with_name("targets")

#: name → (flite voice, description). The flite voices are CMU's (BSD-style licence), speaking
#: sentences written for this project: the pools may be redistributed under the project's licence.
TARGETS = {
    "alto": ("slt", "a calm alto (≈170 Hz), from flite's `slt` voice"),
    "tenor": ("awb", "a warm tenor (≈130 Hz), from flite's `awb` voice"),
    "baritone": ("rms", "a low baritone (≈100 Hz), from flite's `rms` voice"),
}

K = 4
LIFTER = 20             # envelope cepstra kept (of 40): smooths away the finest spectral detail
PROSODY = 0.5           # fraction of the speaker's log-F0 excursions kept
STATS_HOPS = 600        # time constant of the speaker statistics (hops: 3 s)
WARMUP = 0.25           # weight of the prior at the first hop (decays like a running mean)
PRIOR_LF0 = (np.log(140.0), 0.2)


class KnnIndex:
    """k nearest pool frames by Euclidean distance, searched in the ``probe`` closest of ``lists``
    k-means cells (an inverted file: ~20× less work than a scan of the pool, nearly the same
    neighbours). Built once per pool, deterministically."""

    def __init__(self, keys: np.ndarray, lists: int = 64, probe: int = 4, iters: int = 12) -> None:
        cent = keys[np.linspace(0, len(keys) - 1, lists).astype(int)].copy()
        for _ in range(iters):
            lab = np.argmin(np.sum(cent ** 2, 1)[None, :] - 2 * keys @ cent.T, axis=1)
            for c in range(lists):
                members = keys[lab == c]
                if len(members):
                    cent[c] = members.mean(axis=0)
        order = np.argsort(lab, kind="stable")
        self.keys = np.ascontiguousarray(keys[order])
        self.norm2 = np.sum(self.keys ** 2, axis=1)
        self.cent, self.cnorm2 = cent, np.sum(cent ** 2, axis=1)
        self.bounds = np.searchsorted(lab[order], np.arange(lists + 1))
        self.probe = probe

    def nearest(self, q: np.ndarray, k: int) -> np.ndarray:
        """Mean of the ``k`` nearest keys to ``q``."""
        cells = np.argpartition(self.cnorm2 - 2 * self.cent @ q, self.probe)[: self.probe]
        idx = np.concatenate([np.arange(self.bounds[c], self.bounds[c + 1]) for c in cells])
        d = self.norm2[idx] - 2 * self.keys[idx] @ q
        best = idx[np.argpartition(d, k)[:k]] if len(idx) > k else idx
        return self.keys[best].mean(axis=0)


@dataclass(frozen=True)
class Pool:
    name: str
    env: np.ndarray       # (N, ENV_CEPS) float32 envelope cepstra of the target's speech frames
    mean: np.ndarray      # (ENV_CEPS,) their mean and deviation
    std: np.ndarray
    lf0_mean: float       # log-F0 statistics of the voiced frames
    lf0_std: float
    index: KnnIndex       # over the first LIFTER coefficients (the lifter drops the rest)


_CACHE: dict[tuple[Path, str], Pool] = {}


def load_pool(name: str) -> Pool:
    key = (POOL_DIR, name)
    if key in _CACHE:
        return _CACHE[key]
    path = POOL_DIR / f"{name}.npz"
    try:
        with np.load(path) as z:
            env = z["env"].astype(np.float32)
            lf0 = z["lf0"].astype(np.float64)
    except (OSError, KeyError, ValueError) as err:
        raise RavasError(f"target voice {name!r}: its pool {path} cannot be read ({err}).",
                         "reinstall ravasd, or rebuild the pools: python -m ravasd.audio.voices.target") from None
    pool = Pool(name, env, env.mean(axis=0), env.std(axis=0) + 1e-6, float(lf0[0]), float(lf0[1]),
                KnnIndex(np.ascontiguousarray(env[:, :LIFTER])))
    _CACHE[key] = pool
    return pool


def _running(mean, var, x, n: int):
    """Exponentially weighted mean/variance after the ``n``-th sample ``x``: like a plain running
    mean (with the prior weighing 1/WARMUP − 1 samples) until the STATS_HOPS time constant takes over."""
    a = max(1.0 / STATS_HOPS, WARMUP / n)
    d = x - mean
    return mean + a * d, (1 - a) * (var + a * d * d)


class TargetVoice(SourceFilterVoice):
    """Map any speaker onto the target ``target`` (a name in :data:`TARGETS`); see the module doc."""

    def __init__(self, rate: int, target: str, strength: float = 0.0, k: int = K) -> None:
        self.pool = load_pool(target)
        self.strength, self.k = float(strength), k
        super().__init__(rate)

    def reset_mapping(self) -> None:
        self._mu = self.pool.mean.astype(np.float64).copy()   # prior: the target itself
        self._var = self.pool.std.astype(np.float64) ** 2
        self._lmu, self._lvar = PRIOR_LF0[0], PRIOR_LF0[1] ** 2
        self._n = self._nv = 0

    def map(self, feat: Features) -> tuple[np.ndarray, float]:
        c = env_to_ceps(feat.logspec)
        self._n += 1
        self._mu, self._var = _running(self._mu, self._var, c, self._n)
        out = self.pool.mean + (c - self._mu) / np.sqrt(self._var + 1e-6) * self.pool.std
        out[LIFTER:] = 0.0  # spectral detail finer than ~400 Hz is speaker-specific, not phonetic
        if self.strength > 0:
            near = self.pool.index.nearest(out[:LIFTER].astype(np.float32), self.k)
            out[:LIFTER] = self.strength * near + (1 - self.strength) * out[:LIFTER]
        f0 = 0.0
        if feat.f0 > 0:
            lf0 = np.log(feat.f0)
            self._nv += 1
            self._lmu, self._lvar = _running(self._lmu, self._lvar, lf0, self._nv)
            z = np.clip((lf0 - self._lmu) / np.sqrt(self._lvar + 1e-6), -3, 3)
            f0 = float(np.exp(self.pool.lf0_mean + PROSODY * z * self.pool.lf0_std))
        return ceps_to_env(out.astype(np.float64)), f0

    def _excitation(self, f0: float, ap: float) -> np.ndarray:
        return super()._excitation(f0, 0.0 if f0 > 0 else 1.0)  # binary voicing


# -- building the pools -------------------------------------------------------------------------
def analyse(x: np.ndarray) -> list[Features]:
    """Whole-signal analysis at RATE (what the voice sees, hop by hop)."""
    an = Analyzer()
    n = len(x) // HOP
    return [an.step(x[i * HOP:(i + 1) * HOP].astype(np.float64)) for i in range(n)]


def build_pool(name: str, dest: Path | None = None) -> Path:
    """Speak :data:`POOL_SENTENCES` with the target's flite voice, keep every second speech hop's
    envelope (10 ms spacing: neighbours are near duplicates) and the voiced hops' log-F0 statistics."""
    from ...evaluation.corpus import POOL_SENTENCES, synthesize

    dest = dest or POOL_DIR
    voice = TARGETS[name][0]
    envs, lf0s = [], []
    for text in POOL_SENTENCES:
        x = synthesize(text, "flite", voice)
        speech = [f for f in analyse(x / (np.max(np.abs(x)) + 1e-9) * 0.5) if f.logspec is not None]
        envs += [env_to_ceps(f.logspec) for f in speech[::2]]
        lf0s += [np.log(f.f0) for f in speech if f.f0 > 0]
    lf0 = np.array(lf0s)
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"{name}.npz"
    tmp = dest / f".{name}.npz.part"
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, env=np.array(envs, np.float16), lf0=np.array([lf0.mean(), lf0.std()]),
                            source=np.array(f"flite:{voice}"))
    tmp.replace(out)
    return out


if __name__ == "__main__":  # python -m ravasd.audio.voices.target [NAME...]
    for n in sys.argv[1:] or list(TARGETS):
        p = build_pool(n)
        pool = load_pool(n)
        print(f"{n}: {p} ({p.stat().st_size // 1024} KiB, {len(pool.env)} frames, "
              f"F0 {np.exp(pool.lf0_mean):.0f} Hz ± {pool.lf0_std:.2f})")
