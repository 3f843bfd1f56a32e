"""The recipe of the shipped phone model (``ravasd/audio/phonetic/phones.npz``).

``python -m ravasd.evaluation.phonetic.train [--data DIR] [--out FILE]`` makes the training
speakers' corpus (:mod:`.corpus`, cached in ``DIR``), then trains with frame cross-entropy on
torch's CPU build (the ``torch`` extra), in stages:

1. on the utterances whose every 10 ms frame has its true phone: espeak-ng's (the library's phoneme
   events) and Kokoro's (its duration predictor's span for every phoneme it was given,
   :func:`.corpus.timed_labels`);
2. on every training utterance: the others (flite) get frame labels by aligning their text's
   canonical phones to the stage-1 model's posteriors (Viterbi, ``sil`` optional between phones),
   so the voices that neither can make are learnt from too;
3. (``--realign-epochs``) the same, their labels aligned again by the stage-2 model, which has heard
   those voices.

Augmentation: every Kokoro training utterance also as a man's (:func:`lowered`; the training
styles are all female), (``--varied``, off in the shipped recipe: on dev it changed the PER by
−2 to +1 points, README) every espeak-ng and Kokoro training utterance once more in another voice
(:func:`revoiced`), (``--pad``) silence before and after each utterance (:func:`padded`), and per
utterance and epoch a
vocal-tract-length warp 0.88–1.12, gain ±12 dB, a spectral tilt, low noise, (``--bandlimit``) a
low-pass at 3.4–7 kHz, and (``--masks``) SpecAugment-style masks: bands of mel channels and spans of frames
set to the training mean, the labels kept. Dropout (``--dropout``) between the layers. Deterministic: seeded numpy and torch, deterministic torch kernels, fixed thread
count, utterances in a seeded order. Only training speakers are read; test speakers never appear.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ...audio.phonetic import encoder as enc
from .corpus import INDEX, Utt, load, make
from .families import speakers

SEED = 7
CHANNELS, HIDDEN, LAYERS = 192, 256, 2
MASK_BANDS, MASK_FRAMES = 8, 10  # widest masked band (mel channels) and span (frames)


def _features(x: np.ndarray, rng: np.random.Generator | None, bandlimit: float = 0.0) -> np.ndarray:
    """Log-mel features of ``x`` (n, N_MELS); augmented when ``rng`` is given, low-passed at
    3.4–7 kHz with probability ``bandlimit`` (narrow-band voices and microphones)."""
    warp = 1.0
    if rng is not None:
        if rng.random() < bandlimit:
            from scipy.signal import butter, sosfilt

            sos = butter(10, rng.uniform(3400, 7000), fs=enc.RATE, output="sos")
            x = sosfilt(sos, x).astype(np.float32)
        x = x * np.float32(10 ** (rng.uniform(-12, 12) / 20))
        x = x + np.float32(10 ** (rng.uniform(-75, -45) / 20)) * rng.standard_normal(len(x)).astype(np.float32)
        tilt = rng.uniform(-0.6, 0.6)
        x = np.concatenate([x[:1], x[1:] - np.float32(tilt) * x[:-1]]) if tilt > 0 else x
        warp = float(rng.uniform(0.88, 1.12))
    return enc.log_mel(enc.frame(x), warp)


def median_f0(x: np.ndarray) -> float:
    """Median F0 (Hz) of ``x``'s voiced hops by the vocoder's analysis; 0 when none is voiced."""
    from ...audio.voices.vocoder import HOP, Analyzer

    an = Analyzer()
    f0 = [an.step(x[i : i + HOP]).f0 for i in range(0, len(x) - HOP + 1, HOP)]
    voiced = [f for f in f0 if f > 0]
    return float(np.median(voiced)) if voiced else 0.0


def revoiced(
    utts: list[Utt], f0: tuple[float, float], formant: tuple[float, float], seed: int, lower_only: bool = False
) -> list[Utt]:
    """A copy of every utterance with frame truth spoken by another voice: its median F0 moved to a
    target drawn uniformly from ``f0`` (Hz; with ``lower_only`` never raised: at most × 0.8) and its
    spectral envelope scaled in frequency by a factor drawn from ``formant`` (< 1: a longer vocal tract),
    by the streaming vocoder's :class:`PitchFormant` with its latency removed (so the frame labels still
    hold); seeded. Utterances without frame truth are left out."""
    from ...audio.voices import stream
    from ...audio.voices.shift import PitchFormant

    rng = np.random.default_rng(seed)
    out = []
    for u in utts:
        target = float(rng.uniform(*f0))
        factor = float(rng.uniform(*formant))
        if u.frames is None:
            continue
        now = median_f0(u.audio)
        if now <= 0:  # nothing voiced: no pitch to move
            ratio = 1.0
        else:
            ratio = min(0.8, target / now) if lower_only else float(np.clip(target / now, 0.5, 2.0))
        voice = PitchFormant(enc.RATE, ratio, factor)
        lat = voice.latency
        y = stream(voice, u.audio, enc.RATE, 1600, tail=lat)[lat : lat + len(u.audio)]
        out.append(Utt(u.text, y.astype(np.float32), u.phones, u.frames))
    return out


def lowered(utts: list[Utt], seed: int = SEED) -> list[Utt]:
    """A deeper-voiced copy of every utterance with frame truth (:func:`revoiced`): median F0 at 80–140 Hz
    (a man's; never raised) and the vocal tract 8–18 % longer. The training styles are all female
    (median F0 ≈ 230–280 Hz); these copies stand in for men."""
    return revoiced(utts, (80, 140), (0.82, 0.92), seed, lower_only=True)


#: :func:`revoiced`'s ranges for ``--varied``: a person's speaking F0 and vocal tracts ±15 %.
VARIED_F0, VARIED_FORMANT = (85.0, 300.0), (0.85, 1.15)


def padded(utts: list[Utt], lead: float, seed: int = SEED) -> list[Utt]:
    """Every utterance with silence before it (0 … ``lead`` s) and after it (0 … ``lead`` / 2 s), seeded,
    frame labels ``sil`` there: speech in a call follows silence, while the corpus's utterances start
    at once (espeak-ng's median lead is 0 frames). The per-epoch noise fills the silence."""
    rng = np.random.default_rng(seed)
    out = []
    for u in utts:
        a, b = (int(rng.integers(0, int(lead * enc.RATE / enc.HOP) + 1)) for _ in range(2))
        b //= 2
        x = np.concatenate([np.zeros(a * enc.HOP, np.float32), u.audio, np.zeros(b * enc.HOP, np.float32)])
        frames = None
        if u.frames is not None:
            sil = INDEX["sil"]
            frames = np.concatenate([np.full(a, sil, u.frames.dtype), u.frames, np.full(b, sil, u.frames.dtype)])
        out.append(Utt(u.text, x, u.phones, frames))
    return out


def _mask(f: np.ndarray, rng: np.random.Generator, masks: int) -> np.ndarray:
    """``masks`` bands of mel channels and ``masks`` spans of frames of normalised features (T, N_MELS)
    set to 0 (the training mean): the model must hear a phone from what is left and from context."""
    f = f.copy()
    for _ in range(masks):
        w = int(rng.integers(0, MASK_BANDS + 1))
        b = int(rng.integers(0, enc.N_MELS - w + 1))
        f[:, b : b + w] = 0
        w = int(rng.integers(0, min(MASK_FRAMES, max(1, len(f) // 10)) + 1))
        t = int(rng.integers(0, max(1, len(f) - w + 1)))
        f[t : t + w] = 0
    return f


def _model(dropout: float = 0.0):
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv1d(enc.N_MELS, CHANNELS, enc.SPAN)
            self.conv2 = nn.Conv1d(CHANNELS, CHANNELS, 3)
            self.gru = nn.GRU(CHANNELS, HIDDEN, LAYERS, batch_first=True, dropout=dropout)
            self.out = nn.Linear(HIDDEN, enc.CLASSES)
            self.drop = nn.Dropout(dropout)

        def forward(self, f):  # f (B, T, N_MELS) normalised → logits (B, T, CLASSES)
            x = nn.functional.pad(f.transpose(1, 2), (enc.BACK, enc.AHEAD))
            x = torch.relu(self.conv1(x))
            x = self.drop(torch.relu(self.conv2(nn.functional.pad(x, (2, 0)))))
            y, _ = self.gru(x.transpose(1, 2))
            return self.out(self.drop(y))

    return Net()


def export(net, mean: np.ndarray, std: np.ndarray, out: Path) -> None:
    """Write the model as ``phones.npz`` (float16 weights; what :class:`Weights` reads)."""
    sd = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    arrays = {
        "mean": mean,
        "std": std,
        "layers": np.array(LAYERS),
        "conv1_w": sd["conv1.weight"],
        "conv1_b": sd["conv1.bias"],
        "conv2_w": sd["conv2.weight"],
        "conv2_b": sd["conv2.bias"],
        "out_w": sd["out.weight"],
        "out_b": sd["out.bias"],
    }
    for i in range(LAYERS):
        for a, b in (("w_ih", "weight_ih"), ("w_hh", "weight_hh"), ("b_ih", "bias_ih"), ("b_hh", "bias_hh")):
            arrays[f"gru{i}_{a}"] = sd[f"gru.{b}_l{i}"]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **{k: np.asarray(v).astype(np.float16) for k, v in arrays.items()})
    tmp.replace(out)


def forced_alignment(logp: np.ndarray, phones: np.ndarray, sil: int = 0) -> np.ndarray:
    """Viterbi alignment of a phone sequence to frame log posteriors: (T, CLASSES) and L phone
    indices → (T,) label per frame, each phone in order for at least one frame, ``sil`` optional
    before, between and after them. Needs T ≥ L."""
    labels = np.asarray(phones, int)
    n_states = 2 * len(labels) + 1
    ext = np.full(n_states, sil)
    ext[1::2] = labels
    T = len(logp)
    score = np.full(n_states, -np.inf)
    score[0], score[1] = logp[0, sil], logp[0, ext[1]]
    back = np.zeros((T, n_states), np.int8)
    skip = np.zeros(n_states, bool)
    skip[3::2] = True  # phone → next phone without sil
    for t in range(1, T):
        prev1 = np.concatenate([[-np.inf], score[:-1]])
        prev2 = np.where(skip, np.concatenate([[-np.inf, -np.inf], score[:-2]]), -np.inf)
        cand = np.stack([score, prev1, prev2])
        back[t] = cand.argmax(axis=0)
        score = cand.max(axis=0) + logp[t, ext]
    s = n_states - 1 if score[-1] >= score[-2] else n_states - 2
    path = np.zeros(T, int)
    for t in range(T - 1, -1, -1):
        path[t] = s
        s -= back[t, s]
    return ext[path]


def _frame_targets(u: Utt, logp: np.ndarray | None, n: int) -> np.ndarray:
    """Per-frame targets (indices into PHONES) of a training utterance, ``n`` frames."""
    if u.frames is not None:
        lab = np.full(n, INDEX["sil"], np.int64)
        m = min(n, len(u.frames))
        lab[:m] = u.frames[:m]
        return lab
    if n < len(u.phones):
        return np.full(n, -100, np.int64)  # cannot hold its phones: ignored
    return forced_alignment(logp[:n], u.phones, INDEX["sil"]).astype(np.int64)


def _batches(order: np.ndarray, lengths: np.ndarray, frames_per_batch: int) -> list[list[int]]:
    """Utterances of similar length together (less padding), the batches in ``order``'s order."""
    by_len = sorted(order.tolist(), key=lambda i: lengths[i])
    out, cur, longest = [], [], 0
    for i in by_len:
        longest = max(longest, lengths[i])
        if cur and longest * (len(cur) + 1) > frames_per_batch:
            out.append(cur)
            cur, longest = [], lengths[i]
        cur.append(i)
    if cur:
        out.append(cur)
    perm = np.random.default_rng(int(order[0])).permutation(len(out))
    return [out[k] for k in perm]


def train(
    utts: list[Utt],
    first_epochs: int,
    all_epochs: int,
    threads: int = 2,
    log=print,
    frames_per_batch: int = 12000,
    realign_epochs: int = 0,
    masks: int = 0,
    dropout: float = 0.0,
    bandlimit: float = 0.0,
):
    """The stages; returns (net, mean, std). Deterministic for a given ``utts`` and ``threads``."""
    import torch
    from torch import nn

    torch.manual_seed(SEED)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(SEED)
    clean = [_features(u.audio, None) for u in utts]
    stacked = np.concatenate(clean)
    mean, std = stacked.mean(axis=0), stacked.std(axis=0) + 1e-3
    lengths = np.array([len(f) for f in clean])
    net = _model(dropout)
    aligned = np.array([u.frames is not None for u in utts])
    targets: list[np.ndarray | None] = [
        _frame_targets(u, None, n) if u.frames is not None else None for u, n in zip(utts, lengths)
    ]
    total = first_epochs + all_epochs + realign_epochs
    if not aligned.any():
        raise ValueError("stage 1 needs utterances with frame truth (espeak-ng, Kokoro speakers)")
    steps = first_epochs * len(_batches(np.flatnonzero(aligned), lengths, frames_per_batch)) + (
        all_epochs + realign_epochs
    ) * len(_batches(np.arange(len(utts)), lengths, frames_per_batch))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=max(1, steps), pct_start=0.15)
    for epoch in range(total):
        t0, seen, loss_sum = time.time(), 0, 0.0
        if epoch in (first_epochs, first_epochs + all_epochs):  # stages 2 and 3: align those without frame truth
            net.eval()
            with torch.no_grad():
                for i in np.flatnonzero(~aligned):
                    x = torch.from_numpy(((clean[i] - mean) / std)[None]).float()
                    logp = torch.log_softmax(net(x), -1)[0].numpy()
                    targets[i] = _frame_targets(utts[i], logp, lengths[i])
        use = np.flatnonzero(aligned) if epoch < first_epochs else np.arange(len(utts))
        net.train()
        feats = {int(i): _mask((_features(utts[i].audio, rng, bandlimit) - mean) / std, rng, masks) for i in use}
        for batch in _batches(rng.permutation(use), lengths, frames_per_batch):
            T = max(lengths[i] for i in batch)
            x = torch.zeros(len(batch), T, enc.N_MELS)
            y = torch.full((len(batch), T), -100, dtype=torch.long)
            for j, i in enumerate(batch):
                x[j, : lengths[i]] = torch.from_numpy(feats[i])
                y[j, : lengths[i]] = torch.from_numpy(targets[i])
            logits = net(x)
            loss = nn.functional.cross_entropy(logits.reshape(-1, enc.CLASSES), y.reshape(-1), ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            sched.step()
            seen += len(batch)
            loss_sum += loss.item() * len(batch)
        stage = (
            "frame truth"
            if epoch < first_epochs
            else "all, aligned"
            if epoch < first_epochs + all_epochs
            else "all, aligned again"
        )
        log(f"epoch {epoch + 1}/{total} ({stage}): loss {loss_sum / max(1, seen):.3f}, {time.time() - t0:.0f} s")
    return net.eval(), mean.astype(np.float32), std.astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    from ...paths import cache_dir

    ap = argparse.ArgumentParser(
        prog="python -m ravasd.evaluation.phonetic.train", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--data", type=Path, default=cache_dir() / "phonetic-corpus", help="corpus cache folder")
    ap.add_argument("--out", type=Path, default=Path(enc.__file__).with_name("phones.npz"))
    ap.add_argument("--first-epochs", type=int, default=8, help="stage 1: utterances with frame truth only")
    ap.add_argument("--all-epochs", type=int, default=20, help="stage 2: every training utterance")
    ap.add_argument(
        "--realign-epochs", type=int, default=8, help="stage 3: every utterance, aligned again by the stage-2 model"
    )
    ap.add_argument("--masks", type=int, default=0, help="mel bands and frame spans masked per utterance")
    ap.add_argument("--dropout", type=float, default=0.0, help="dropout between the layers while training")
    ap.add_argument(
        "--lowered", default="kokoro", help="families whose utterances also train as a man's voice (comma list; 'none')"
    )
    ap.add_argument(
        "--varied",
        default="none",
        help="families whose utterances also train once more in another voice (F0 85–300 Hz, formants ±15 %%; "
        "comma list; 'none')",
    )
    ap.add_argument(
        "--pad", type=float, default=0.0, help="silence of up to this many seconds before each utterance (half after)"
    )
    ap.add_argument("--bandlimit", type=float, default=0.2, help="share of utterances low-passed per epoch")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    paths = sorted(make(args.data, "train", progress=True))  # by name
    utts = [u for p in paths for u in load(p)]
    family = {who.name: who.family for who in speakers("train")}
    deeper = [p for p in paths if family[p.stem].split("-")[0] in args.lowered.split(",")]
    utts += lowered([u for p in deeper for u in load(p)])
    other = [p for p in paths if family[p.stem].split("-")[0] in args.varied.split(",")]
    utts += revoiced([u for p in other for u in load(p)], VARIED_F0, VARIED_FORMANT, SEED + 1)
    if args.pad > 0:
        utts = padded(utts, args.pad)
    print(f"{len(utts)} training utterances, {sum(len(u.audio) for u in utts) / enc.RATE / 3600:.2f} h")
    net, mean, std = train(
        utts,
        args.first_epochs,
        args.all_epochs,
        args.threads,
        realign_epochs=args.realign_epochs,
        masks=args.masks,
        dropout=args.dropout,
        bandlimit=args.bandlimit,
    )
    export(net, mean, std, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
