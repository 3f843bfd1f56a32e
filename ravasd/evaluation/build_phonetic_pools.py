"""Building the phonetic voices' pools (``ravasd/audio/voices/targets/<name>.phon.npz``).

Offline and deterministic: the target's flite voice reads :data:`~ravasd.evaluation.corpus.POOL_SENTENCES`
and seeded sentences from the training word list (:func:`~ravasd.evaluation.phonetic.families.training_sentences`;
never an evaluation sentence) as one stream with 0.3 s pauses. Per 10 ms frame whose two 5 ms hops are
both speech (hops 2 j + SHIFT and the next, :data:`~ravasd.audio.voices.phonetic.SHIFT`) the pool keeps the phone encoder's key (:func:`ravasd.audio.voices.phonetic.keys`) and the
vocoder's envelope cepstra and loudness of the two hops, and the envelopes' :func:`~ravasd.audio.voices.phonetic.spread_gain`. The keys are projected onto their
:data:`DIMS` principal directions and stored as int8 steps, the envelopes as int8 steps per
coefficient, both as frame-to-frame differences (:func:`~ravasd.audio.voices.phonetic.delta`). ``python -m ravasd.evaluation.build_phonetic_pools [NAME...]`` rebuilds the shipped pools
(~1 min per voice).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..audio.phonetic import encoder as enc
from ..audio.voices import phonetic as ph
from ..audio.voices.target import POOL_DIR, TARGETS
from ..audio.voices.vocoder import RATE, Analyzer, env_to_ceps
from .build_pools import analyse
from .corpus import POOL_SENTENCES, synthesize
from .phonetic.families import training_sentences

SENTENCES = 128  # seeded sentences beside the pool sentences
SEED = 991
DIMS = 48  # principal directions of the keys searched (chosen on dev: README)


def frames(name: str, sentences: int = SENTENCES) -> dict[str, np.ndarray]:
    """The target's speech frames: unprojected keys (N, 2 H), envelope cepstra (N, 2, ENV_CEPS), log
    RMS (N, 2), and the log-F0 of every voiced hop."""
    voice = TARGETS[name][0]
    an = Analyzer()
    keys, env, lr, lf0 = [], [], [], []
    for text in list(POOL_SENTENCES) + training_sentences(sentences, SEED):
        x = synthesize(text, "flite", voice).astype(np.float64)
        x = np.concatenate([x / (np.max(np.abs(x)) + 1e-9) * 0.5, np.zeros(int(0.3 * RATE))])
        feats = analyse(x, an)
        k = ph.keys(enc.hidden(x.astype(np.float32)))
        for j in range(min(len(k), (len(feats) - ph.SHIFT) // 2)):
            a, b = feats[2 * j + ph.SHIFT], feats[2 * j + ph.SHIFT + 1]
            if a.logspec is None or b.logspec is None:
                continue
            keys.append(k[j])
            env.append([env_to_ceps(a.logspec), env_to_ceps(b.logspec)])
            lr.append([np.log(a.rms), np.log(b.rms)])
        lf0 += [np.log(f.f0) for f in feats if f.f0 > 0]
    return {"keys": np.array(keys), "env": np.array(env), "lr": np.array(lr), "lf0": np.array(lf0)}


def project(keys: np.ndarray, center: np.ndarray, proj: np.ndarray, scale: float) -> np.ndarray:
    return np.clip(np.round((keys - center) @ proj / scale), -127, 127).astype(np.int8)


def pool_arrays(name: str, sentences: int = SENTENCES) -> dict[str, np.ndarray]:
    f = frames(name, sentences)
    x = f["keys"].astype(np.float64)
    center = x.mean(axis=0)
    w, v = np.linalg.eigh(np.cov((x - center).T))
    proj = v[:, ::-1][:, :DIMS]
    proj *= np.where(proj[np.abs(proj).argmax(axis=0), np.arange(DIMS)] < 0, -1, 1)  # a fixed sign per direction
    center, proj = center.astype(np.float32), proj.astype(np.float32)
    key_scale = float(np.abs((x - center) @ proj).max() / 127)
    env_scale = np.abs(f["env"]).max(axis=(0, 1)) / 127 + 1e-9
    lr = f["lr"]
    arrays = {
        "keys": ph.delta(project(f["keys"], center, proj, key_scale)),
        "key_scale": np.float32(key_scale),
        "center": center,
        "proj": proj,
        "env": ph.delta(np.round(f["env"] / env_scale).astype(np.int8)),
        "env_scale": env_scale.astype(np.float32),
        "level": ((lr - lr.mean()) / lr.std()).astype(np.float16),
        "lf0": np.array([f["lf0"].mean(), f["lf0"].std()]),
    }
    # measured on the pool as the voice will read it (dequantised)
    arrays["spread"] = ph.spread_gain(ph.pool_from_arrays(name, arrays))
    return arrays


def build(name: str, dest: Path | None = None, sentences: int = SENTENCES) -> Path:
    """Write ``targets/<name>.phon.npz`` (or ``dest``); deterministic."""
    path = dest or POOL_DIR / f"{name}.phon.npz"
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **pool_arrays(name, sentences))
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(TARGETS)
    for name in names:
        print(build(name), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
