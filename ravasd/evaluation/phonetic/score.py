"""How well a phone model hears phones: phone error rate and frame accuracy per family.

PER: the edit distance between the model's decoded phones (:func:`decode`) and the canonical
phones of the text, over the canonical count. Frame accuracy: the share of 10 ms frames whose best
phone is the one espeak-ng was speaking at that moment (its accent's phone, folded) — only where
such a truth exists, the espeak-ng speakers; ``sil`` frames are scored too (an encoder must know when nobody
speaks). Intervals: 95 % bootstrap over speakers (an utterance of a speaker is not independent of
the speaker's others).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ...audio.phonetic import encoder as enc
from .corpus import Utt, load, make
from .families import FAMILIES, speakers

BOOT = 1000


def edit_distance(a: list[int], b: list[int]) -> int:
    """Levenshtein distance of two sequences."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


@dataclass
class FamilyScore:
    family: str
    split: str
    speakers: int
    utterances: int
    per: float
    per_interval: tuple[float, float]
    frame_accuracy: float | None = None
    frame_interval: tuple[float, float] | None = None
    frame_speakers: int = 0


@dataclass
class PhoneReport:
    model: str
    lookahead_ms: float
    families: list[FamilyScore] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _ratio(counts: np.ndarray, idx: np.ndarray) -> float:
    c = counts[idx].sum(axis=0)
    return float(c[0] / max(1, c[1]))


def _interval(counts: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    n = len(counts)
    draws = [_ratio(counts, rng.integers(0, n, n)) for _ in range(BOOT)]
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def score_utterances(
    by_speaker: dict[str, list[Utt]], weights: enc.Weights | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per speaker (errors, phones) and (right frames, frames; zeros where no alignment)."""
    per, frames = [], []
    for utts in by_speaker.values():
        e = n = r = f = 0
        for u in utts:
            post = enc.posteriors(u.audio, weights)
            hyp = enc.decode(post)
            e += edit_distance(hyp, [int(p) for p in u.phones])
            n += len(u.phones)
            if u.frames is not None:
                m = min(len(u.frames), len(post))
                r += int(np.sum(post[:m].argmax(axis=1) == u.frames[:m]))
                f += m
        per.append((e, n))
        frames.append((r, f))
    return np.array(per, float), np.array(frames, float)


def evaluate(
    data: Path,
    split: str = "test",
    model: Path | None = None,
    families: tuple[str, ...] = FAMILIES,
    progress: bool = False,
) -> PhoneReport:
    """Score the model (default: the shipped one) on ``split``'s speakers of each family, making
    their speech into ``data`` first where it is missing."""
    weights = enc.Weights.load(model) if model else enc.shipped()
    report = PhoneReport(str(model or "shipped"), round(enc.LOOKAHEAD_S * 1000, 1))
    rng = np.random.default_rng(0)
    for family in families:
        who = speakers(split, family)
        if not who:
            continue
        paths = make(data, split, family, progress=progress)
        by_speaker = {p.stem: load(p) for p in paths}
        per, fr = score_utterances(by_speaker, weights)
        score = FamilyScore(
            family,
            split,
            len(by_speaker),
            sum(len(v) for v in by_speaker.values()),
            _ratio(per, np.arange(len(per))),
            _interval(per, rng),
        )
        aligned = np.flatnonzero(fr[:, 1] > 0)
        if len(aligned):
            score.frame_accuracy = _ratio(fr, aligned)
            score.frame_interval = _interval(fr[aligned], rng)
            score.frame_speakers = len(aligned)
        report.families.append(score)
    return report


def format_table(r: PhoneReport) -> str:
    lines = [
        f"phone model: {r.model} (look-ahead {r.lookahead_ms:.0f} ms)",
        f"{'family':<14}{'split':<7}{'speakers':>9}{'utts':>6}  {'PER (95 % CI)':<24}frame accuracy (95 % CI)",
    ]
    for f in r.families:
        fa = (
            f"{f.frame_accuracy:.1%} ({f.frame_interval[0]:.1%}–{f.frame_interval[1]:.1%}), "
            f"{f.frame_speakers} speaker(s)"
            if f.frame_accuracy is not None
            else "– (no alignment)"
        )
        lines.append(
            f"{f.family:<14}{f.split:<7}{f.speakers:>9}{f.utterances:>6}  "
            f"{f'{f.per:.1%} ({f.per_interval[0]:.1%}–{f.per_interval[1]:.1%})':<24}{fa}"
        )
    return "\n".join(lines)
