"""Building the target voices' pools (``ravasd/audio/voices/targets/<name>.npz``).

Offline and deterministic: the target's flite voice and the :data:`REFERENCE_SPEAKERS` read
:data:`~ravasd.evaluation.corpus.POOL_SENTENCES`; every reference hop is aligned to the target hop
saying the same sound (DTW over whole sentences, librosa from the ``eval`` extra), keyed exactly as
:class:`~ravasd.audio.voices.target.TargetVoice` keys its input, projected (:func:`sound_projection`)
and indexed. ``python -m ravasd.evaluation.build_pools [NAME...]`` rebuilds the shipped pools (~1.5 min
per voice on 2 cores). The run-time voice only loads the result.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy import linalg

from ..audio.voices.target import (
    ALIGN_CEPS,
    KEY_STEP,
    LISTS,
    POOL_DIR,
    SOUND_DIMS,
    SOUNDS,
    SUBSAMPLE,
    TARGETS,
    Standardiser,
    load_pool,
    raw_key,
)
from ..audio.voices.vocoder import ENV_CEPS, HOP, RATE, Analyzer, Features, env_to_ceps
from ..errors import RavasError
from .corpus import POOL_SENTENCES, synthesize

#: The speakers whose hops the input is matched against: (synthesizer, voice, extra args). None of
#: them is an evaluation speaker (a test checks), so the evaluation measures unseen speakers.
REFERENCE_SPEAKERS = [
    ("espeak-ng", v, ["-p", p, "-s", s])
    for v, p, s in [
        ("en-us+Andy", "50", "160"),
        ("en-gb+Annie", "60", "150"),
        ("en-us+david", "40", "170"),
        ("en-gb-x-gbclan+Ed", "35", "150"),
        ("en-us+Linda", "65", "155"),
        ("en-gb-x-gbcwmd+john", "45", "145"),
        ("en-us+m4", "30", "160"),
        ("en-us+f3", "70", "165"),
        ("en-gb+m5", "50", "140"),
        ("en-029+f5", "55", "150"),
        ("en-gb-scotland+Steph", "60", "160"),
        ("en-us+Mike", "42", "150"),
    ]
] + [("flite", "slt", []), ("flite", "rms", [])]


def sound_projection(keys: np.ndarray, target_env: np.ndarray) -> np.ndarray:
    """(KEY_DIMS, SOUND_DIMS) linear discriminant projection of the keys (pool building).

    Classes: :data:`SOUNDS` k-means clusters of the target envelopes the reference hops are aligned
    to (``target_env``, one row per key). The directions maximise the spread between sounds relative
    to the spread among reference speakers saying the same sound, each weighted by the square root
    of that ratio — so the search weighs what tells sounds apart, not what tells speakers apart
    (measured: lazy-informed EER 24 → 31 %, README). Scaled so projected keys have unit variance
    per dimension on average (their int8 steps stay meaningful)."""
    _, lab = _kmeans(target_env[:, 1:], SOUNDS)
    x = keys.astype(np.float64)
    mu = x.mean(axis=0)
    sw, sb = np.zeros((x.shape[1],) * 2), np.zeros((x.shape[1],) * 2)
    for c in range(SOUNDS):
        xc = x[lab == c]
        if len(xc) < 2:
            continue
        mc = xc.mean(axis=0)
        sw += (xc - mc).T @ (xc - mc)
        sb += len(xc) * np.outer(mc - mu, mc - mu)
    sw += 0.01 * np.trace(sw) / len(sw) * np.eye(len(sw))  # regularised: a few rare directions
    w, v = linalg.eigh(sb, sw)
    top = np.argsort(w)[::-1][:SOUND_DIMS]
    proj = v[:, top] * np.sqrt(np.maximum(w[top], 0.0))
    y = (x - mu) @ proj
    proj /= np.sqrt(np.mean(y * y))
    return proj.astype(np.float32)


def analyse(x: np.ndarray, an: Analyzer | None = None) -> list[Features]:
    """Hop-by-hop analysis at RATE (what the voice sees); ``an`` carries the stream's state on."""
    an = an or Analyzer()
    return [an.step(x[i * HOP : (i + 1) * HOP].astype(np.float64)) for i in range(len(x) // HOP)]


def _align_features(feats: list[Features]) -> np.ndarray:
    """Per-hop features for DTW: envelope cepstra and loudness standardised over the sentence
    (offline, whole sentences: alignment may look at everything), and a speech/silence flag."""
    sp = np.array([f.logspec is not None for f in feats])
    c = np.zeros((len(feats), ALIGN_CEPS - 1))
    c[sp] = [env_to_ceps(f.logspec)[1:ALIGN_CEPS] for f in feats if f.logspec is not None]
    c[sp] = (c[sp] - c[sp].mean(0)) / (c[sp].std(0) + 1e-6)
    lr = np.log(np.array([f.rms for f in feats]) + 1e-5)
    lr = (lr - lr[sp].mean()) / (lr[sp].std() + 1e-6)
    return np.concatenate([c, 2 * lr[:, None], 3 * sp[:, None]], axis=1)


def _speak(synth: str, voice: str, extra: list[str], text: str, peak: float) -> np.ndarray:
    x = synthesize(text, synth, voice, extra).astype(np.float64)
    return x / (np.max(np.abs(x)) + 1e-9) * peak


def _reference_speaker(job) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One reference speaker reads the sentences as one stream (0.3 s pauses). Returns, per speech
    hop: raw key (n, MEL_CEPS + 1), voicing (n,), aligned target row (n,)."""
    import librosa  # the eval extra's; build_pool checked it is there

    (synth, voice, extra), sentences, targets, offsets = job
    an = Analyzer()
    raws, voiced, rows = [], [], []
    for text, tfeats, off in zip(sentences, targets, offsets):
        x = np.concatenate([_speak(synth, voice, extra, text, 0.3), np.zeros(int(0.3 * RATE))])
        feats = analyse(x, an)
        _, path = librosa.sequence.dtw(_align_features(feats).T, _align_features(tfeats).T)
        match: dict[int, list[int]] = {}
        for i, j in path[::-1]:
            match.setdefault(int(i), []).append(int(j))
        speech = np.array([j for j, f in enumerate(tfeats) if f.logspec is not None])
        for i, f in enumerate(feats):
            if f.logspec is None:
                continue
            js = match[i]
            j = js[len(js) // 2]
            if tfeats[j].logspec is None:  # aligned to a pause: the closest target speech hop
                j = int(speech[np.argmin(np.abs(speech - j))])
            raws.append(raw_key(f))
            voiced.append(f.f0 > 0)
            rows.append(off + j)
    return np.array(raws), np.array(voiced), np.array(rows)


def _kmeans(x: np.ndarray, n: int, iters: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic k-means (``n`` cells, seeded from evenly spaced rows): (centroids, labels)."""
    cent = x[np.linspace(0, len(x) - 1, n).astype(int)].astype(np.float64)
    for _ in range(iters + 1):
        lab = np.argmin(np.sum(cent**2, 1)[None, :] - 2 * x @ cent.T, axis=1)
        for c in range(n):
            members = x[lab == c]
            if len(members):
                cent[c] = members.mean(axis=0)
    return cent.astype(np.float32), lab


def build_pool(
    name: str,
    dest: Path | None = None,
    speakers: int | None = None,
    sentences: int | None = None,
    proj: np.ndarray | None = None,
) -> Path:
    """Make ``targets/<name>.npz``: the target's flite voice and the reference speakers read
    :data:`POOL_SENTENCES` (the first ``sentences`` of them, by the first ``speakers`` reference
    speakers, with a given search projection ``proj``: for tests). Deterministic: the same tools
    give the same file."""
    try:
        import librosa  # noqa: F401  (DTW)
    except ImportError:
        raise RavasError(
            "building target pools needs librosa (dynamic time warping).",
            "install the eval extra: pip install -e '.[eval]'",
        ) from None
    texts = POOL_SENTENCES[:sentences]
    voice = TARGETS[name][0]
    targets = [analyse(_speak("flite", voice, [], t, 0.5)) for t in texts]
    offsets = np.cumsum([0] + [len(t) for t in targets[:-1]])
    env = np.array(
        [env_to_ceps(f.logspec) if f.logspec is not None else np.zeros(ENV_CEPS) for t in targets for f in t]
    )
    lr = np.log(np.array([f.rms for t in targets for f in t]) + 1e-9)
    speech = np.array([f.logspec is not None for t in targets for f in t])
    level = np.where(speech, (lr - lr[speech].mean()) / lr[speech].std(), 0.0)
    lf0 = np.log([f.f0 for t in targets for f in t if f.f0 > 0])

    jobs = [(spk, texts, targets, offsets) for spk in REFERENCE_SPEAKERS[:speakers]]
    with ProcessPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as ex:
        streams = list(ex.map(_reference_speaker, jobs))
    allraw = np.concatenate([s[0] for s in streams])
    key_mean, key_var = allraw.mean(axis=0), allraw.var(axis=0)
    keys, rows, origin = [], [], []
    for n, (raws, voiced, trows) in enumerate(streams):
        st = Standardiser(key_mean, key_var)
        ks = [st.key(r, v) for r, v in zip(raws, voiced)]  # every hop: the context needs them
        keep = np.arange(0, len(ks), SUBSAMPLE)
        keys.append(np.array(ks)[keep])
        rows.append(trows[keep])
        origin.append(np.stack([np.full(len(keep), n), keep], axis=1))
    keys, rows, origin = np.concatenate(keys), np.concatenate(rows), np.concatenate(origin)
    if proj is None:
        proj = sound_projection(keys, env[rows])
    keys = np.clip(np.round(keys @ proj / KEY_STEP), -127, 127).astype(np.int8)
    cent, lab = _kmeans(keys * KEY_STEP, LISTS)
    order = np.argsort(lab, kind="stable")

    dest = dest or POOL_DIR
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / f"{name}.npz"
    tmp = dest / f".{name}.npz.part"
    with open(tmp, "wb") as fh:
        np.savez_compressed(
            fh,
            env=env.astype(np.float16),
            level=level.astype(np.float16),
            lf0=np.array([lf0.mean(), lf0.std()]),
            key_mean=key_mean,
            key_var=key_var,
            proj=proj,
            keys=keys[order],
            rows=rows[order].astype(np.int32),
            cent=cent,
            bounds=np.searchsorted(lab[order], np.arange(LISTS + 1)).astype(np.int32),
            origin=origin[order].astype(np.int32),
            source=np.array(f"flite:{voice}"),
        )
    tmp.replace(out)
    return out


if __name__ == "__main__":  # python -m ravasd.evaluation.build_pools [NAME...]
    for n in sys.argv[1:] or list(TARGETS):
        p = build_pool(n)
        pool = load_pool(n)
        print(
            f"{n}: {p} ({p.stat().st_size // 1024} KiB, {len(pool.keys)} reference hops → "
            f"{len(pool.env)} target hops, F0 {np.exp(pool.lf0_mean):.0f} Hz ± {pool.lf0_std:.2f})"
        )
