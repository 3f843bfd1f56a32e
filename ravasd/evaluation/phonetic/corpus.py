"""The phonetic corpus: speech of the family speakers with phone labels, made on this machine.

Labels come from espeak-ng: every utterance's canonical phone sequence is what espeak-ng's
``en-us`` voice speaks for its text (:meth:`Espeak.phones`), folded into :data:`PHONES`. An
utterance an espeak-ng speaker spoke also gets its exact frame alignment (the library's phoneme
events), and one Kokoro spoke gets the span its duration predictor gave each phoneme
(:func:`timed_labels`). Deterministic: seeded speakers and sentences, one-thread Kokoro and Piper, Piper
without its noise terms. ``make(dest, split)`` writes one ``<speaker>.npz`` per speaker (audio as
int16 at 16 kHz, phone indices, alignments) and skips speakers already written.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from ...audio.phonetic import encoder as enc
from ...errors import RavasError
from ..corpus import EVAL_SENTENCES, RATE
from ..corpus import synthesize as say_cli
from .espeak import Espeak
from .families import KOKORO_STYLES, Speaker, speakers, training_sentences

#: The phone inventory: the encoder's output classes (``sil`` marks non-speech).
PHONES = enc.PHONES
#: espeak-ng phones folded into :data:`PHONES`: allophones to their phoneme, r- and l-compounds split.
FOLD = {
    "ᵻ": ["ɪ"],
    "ɐ": ["ə"],
    "i": ["iː"],
    "ɜː": ["ɚ"],
    "ɾ": ["t"],
    "ɔ": ["ɔː"],
    "ɑ": ["ɑː"],
    "a": ["æ"],
    "e": ["ɛ"],
    "o": ["oʊ"],
    "u": ["uː"],
    "r": ["ɹ"],
    "x": ["k"],
    "ʔ": ["t"],
    "n̩": ["ə", "n"],
    "ɬ": ["l"],
    "əl": ["ə", "l"],
    "ɔːɹ": ["ɔː", "ɹ"],
    "oːɹ": ["oʊ", "ɹ"],
    "ɑːɹ": ["ɑː", "ɹ"],
    "aɪɚ": ["aɪ", "ɚ"],
    "aɪə": ["aɪ", "ə"],
    "iə": ["iː", "ə"],
    "ɪɹ": ["ɪ", "ɹ"],
    "ɛɹ": ["ɛ", "ɹ"],
    "ʊɹ": ["ʊ", "ɹ"],
    "oː": ["oʊ"],
    "eə": ["ɛ", "ə"],
    "ʊə": ["ʊ", "ə"],
    "əʊ": ["oʊ"],
    "ɒ": ["ɑː"],
    "ɑːɪ": ["aɪ"],
    "ɜ": ["ɚ"],
    "ɪə": ["ɪ", "ə"],
    # the other English accents' vowels, to the nearest American phoneme
    "ei": ["eɪ"],
    "eː": ["eɪ"],
    "ʌʊ": ["oʊ"],
    "əu": ["oʊ"],
    "ʌʉ": ["aʊ"],
    "æʊ": ["aʊ"],
    "ʉː": ["uː"],
    "ʉ": ["uː"],
    "ʉɹ": ["uː", "ɹ"],
    "a:": ["ɑː"],
    "aː": ["ɑː"],
    "aa": ["ɑː"],
    "ɑə": ["ɑː"],
    "ɔə": ["ɔː"],
    "oə": ["ɔː"],
    "ɛə": ["æ"],
    "əɪ": ["aɪ"],
    "oɪ": ["ɔɪ"],
    "ʌɹ": ["ɚ"],
    "əɹ": ["ɚ"],
    "t̪": ["t"],
    "ʍ": ["w"],
    "ʲ": ["j"],
}
INDEX = {p: i for i, p in enumerate(PHONES)}
HOP = 160  # samples at 16 kHz per label frame (10 ms)


def fold(phones: list[str]) -> list[int]:
    """espeak-ng phones → indices into :data:`PHONES`; a phone with no entry is an error (the
    inventory is closed so that a model's outputs mean the same in every build)."""
    out = []
    for p in phones:
        for q in FOLD.get(p, [p]):
            if q not in INDEX:
                raise RavasError(
                    f"espeak-ng spoke a phone the inventory lacks: {p!r}.",
                    "add it to PHONES or FOLD in ravasd/evaluation/phonetic/corpus.py.",
                )
            out.append(INDEX[q])
    return out


def frame_labels(phones: list[tuple[str, int]], rate: int, n_frames: int, audio: np.ndarray) -> np.ndarray:
    """Per-10 ms labels (indices into PHONES) from phoneme events at ``rate``: each frame takes the
    phone whose span holds its centre; quiet frames (60 dB under the loudest) are ``sil``."""
    starts = np.array([s * RATE / rate for _, s in phones] + [len(audio)], float)
    names = [p for p, _ in phones]
    centres = (np.arange(n_frames) + 0.5) * HOP
    which = np.clip(np.searchsorted(starts, centres, side="right") - 1, 0, len(names) - 1)
    labels = np.array([fold([names[i]])[0] for i in which], np.int16)
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(audio, (0, HOP)), HOP)[::HOP][:n_frames]
    energy = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    labels[energy < energy.max() - 60] = INDEX["sil"]
    return labels


#: Kokoro's audio runs ahead of its duration predictor's spans by about this much (s): on the training
#: speakers' utterances the fricative/vowel separation by zero crossings peaks with the spans moved 40–50 ms
#: earlier, the same in the first, middle and last third of the utterances.
KOKORO_LEAD = 0.045
#: Stress marks: a Kokoro token of its own, whose duration is the stressed vowel's start.
STRESS = "ˈˌ"
_UNITS = sorted(set(PHONES[1:]) | set(FOLD), key=len, reverse=True)


def timed_labels(timed: list[tuple[str, float, float]], n_frames: int, audio: np.ndarray) -> np.ndarray | None:
    """Per-10 ms labels from the phoneme characters a TTS model spoke and when (``(char, start_s, end_s)``,
    in order, ``audio`` at :data:`RATE`): characters are grouped into phones (longest match over
    :data:`PHONES` and :data:`FOLD`; a phone that folds into several shares its span equally), a stress
    mark's span goes to the phone after it, a word gap is split between its neighbours, punctuation and
    what comes before the first phone are ``sil``; then as :func:`frame_labels`. None when a character
    belongs to no phone (the utterance is then aligned like one without timings)."""
    chars = "".join(c for c, _, _ in timed)
    events: list[tuple[str, float]] = [("sil", 0.0)]  # (phone, start in s), in order
    i, begin = 0, None  # begin: where the next phone starts if earlier than its own start (gap, stress)
    while i < len(timed):
        c, start, end = timed[i]
        if c in STRESS or c == " ":
            mid = start if c in STRESS else (start + end) / 2
            begin = mid if begin is None else begin
            i += 1
        elif not (c.isalpha() or c in "ːʲ̩"):  # punctuation: a pause
            events.append(("sil", start))
            begin, i = None, i + 1
        else:
            unit = next((u for u in _UNITS if chars.startswith(u, i)), None)
            if unit is None:
                return None
            first, last = (start if begin is None else begin), timed[i + len(unit) - 1][2]
            parts = FOLD.get(unit, [unit])
            events += [(q, first + (last - first) * k / len(parts)) for k, q in enumerate(parts)]
            begin, i = None, i + len(unit)
    return frame_labels([(p, int(round(t * RATE))) for p, t in events], RATE, n_frames, audio)


def kokoro_style(styles: dict[str, np.ndarray], weights) -> np.ndarray:
    """A family speaker's Kokoro style: ``weights`` over :data:`KOKORO_STYLES` mixing their vectors."""
    stack = np.stack([styles[k] for k in KOKORO_STYLES])
    return np.tensordot(np.asarray(weights, np.float32), stack, axes=1).astype(np.float32)


@dataclass
class Utt:
    text: str
    audio: np.ndarray  # float32 at RATE
    phones: np.ndarray  # int16 canonical phone indices (no sil)
    frames: np.ndarray | None  # int16 per-10 ms labels, for espeak-ng speakers only


class Maker:
    """Speaks any family speaker; Kokoro and Piper load on first use."""

    def __init__(self) -> None:
        self.espeak = Espeak()
        self._kokoro = None
        self._piper = None

    def say(self, who: Speaker, text: str) -> Utt:
        canon = np.array(fold(self.espeak.phones(text)), np.int16)
        frames = None
        if who.family == "espeak":
            voice, pitch, wpm = who.spec
            spoken = self.espeak.speak(text, voice, wpm, pitch)
            x = soxr.resample(spoken.audio, spoken.rate, RATE).astype(np.float32)
            frames = frame_labels(spoken.phones, spoken.rate, len(x) // HOP, x)
        elif who.family in ("kokoro-style", "kokoro-mix"):
            x, timed = self._say_kokoro(who.spec, text)
            frames = timed_labels(timed, len(x) // HOP, x)
        elif who.family == "flite":
            x = say_cli(text, "flite", who.spec[0])
        elif who.family == "piper":
            if self._piper is None:
                from ..realistic import _piper

                self._piper = _piper()
            x = self._piper(text.capitalize() + ".")
        else:
            raise ValueError(who.family)
        return Utt(text, np.asarray(x, np.float32), canon, frames)

    def _say_kokoro(self, spec: tuple, text: str) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
        """Kokoro speaking ``text`` as ``spec`` says: (audio at :data:`RATE`, its phoneme characters with
        start and end in seconds, moved :data:`KOKORO_LEAD` earlier). No pauses are added at punctuation:
        the audio is what ``create`` makes."""
        if self._kokoro is None:
            from ..realistic import _engine

            logging.getLogger("phonemizer").setLevel(logging.ERROR)
            self._kokoro = _engine(timed=True)
        kokoro, styles = self._kokoro
        weights, speed = spec
        style = kokoro_style(styles, weights)
        audio, rate, timed = kokoro.create_timed(
            text.capitalize() + ".",
            voice=style,
            speed=speed,
            lang="en-us",
            sentence_pause=0,
            clause_pause=0,
        )
        x = soxr.resample(np.asarray(audio, np.float32), rate, RATE).astype(np.float32)
        lead = lambda t: max(0.0, t - KOKORO_LEAD)  # noqa: E731
        return x, [(t.phoneme, lead(t.start), lead(t.end)) for t in timed]


#: Training sentences per speaker, by family (espeak-ng is cheap; Kokoro runs at about real time here).
TRAIN_PER_SPEAKER = {"espeak": 12, "kokoro-style": 40, "kokoro-mix": 16, "flite": 60}


def sentences_for(who: Speaker) -> list[str]:
    """What ``who`` reads: its own seeded training sentences, or the evaluation sentences (dev/test)."""
    if who.split != "train":
        return list(EVAL_SENTENCES)
    # the whole name seeds them: a seed from its first bytes gave every ``kmix…`` speaker the same 16
    seed = int.from_bytes(hashlib.sha256(who.name.encode()).digest()[:4], "little")
    return training_sentences(TRAIN_PER_SPEAKER[who.family], seed)


def save(path: Path, utts: list[Utt]) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        text=np.array([u.text for u in utts]),
        audio=np.array([np.clip(u.audio * 32767, -32768, 32767).astype(np.int16) for u in utts], dtype=object),
        phones=np.array([u.phones for u in utts], dtype=object),
        frames=np.array([u.frames if u.frames is not None else np.zeros(0, np.int16) for u in utts], dtype=object),
    )
    tmp.replace(path)


def _current(path: Path, who: Speaker) -> bool:
    """True when ``path`` holds what ``who`` reads now (the sentences; the audio follows from them)."""
    try:
        with np.load(path, allow_pickle=True) as z:
            return [str(t) for t in z["text"]] == sentences_for(who)
    except (OSError, KeyError, ValueError):
        return False


def load(path: Path) -> list[Utt]:
    with np.load(path, allow_pickle=True) as z:
        return [
            Utt(str(t), a.astype(np.float32) / 32767, p, f if len(f) else None)
            for t, a, p, f in zip(z["text"], z["audio"], z["phones"], z["frames"])
        ]


def make(
    dest: Path,
    split: str | None = None,
    family: str | None = None,
    names: list[str] | None = None,
    progress: bool = False,
) -> list[Path]:
    """Write ``dest/<speaker>.npz`` for the chosen speakers (skipping those already there)."""
    dest.mkdir(parents=True, exist_ok=True)
    maker = Maker()
    out = []
    for who in speakers(split, family):
        if names and who.name not in names:
            continue
        path = dest / f"{who.name}.npz"
        if path.exists() and not _current(path, who):
            path.unlink()  # an older recipe's: other sentences
        if not path.exists():
            save(path, [maker.say(who, t) for t in sentences_for(who)])
            if progress:
                print(f"  {who.family}/{who.split} {who.name}", flush=True)
        out.append(path)
    return out
