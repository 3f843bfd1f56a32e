"""Synthetic speech corpora made on this machine from speech synthesizers (espeak-ng, flite).

Used twice: the evaluation corpus (``ravasd eval corpus``: several speakers × the same sentences,
files ``<speaker>_<nn>.wav`` + ``.txt`` transcripts) and the target-voice pools (flite voices
reading :data:`POOL_SENTENCES`). All sentences below were written for this project (MIT). The
synthesizers' output is free to redistribute: flite and its CMU voices are under a BSD-style
licence; espeak-ng is GPL-3, which covers the program, not the audio it speaks.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from ..errors import RavasError
from ..media.wav import read_wav, write_wav

RATE = 16000

#: Evaluation sentences: short, common words (what a session's speech sounds like).
EVAL_SENTENCES = [
    "i have been feeling tired for most of the week",
    "we talked about my family and my work last time",
    "the weather was nice so i went for a long walk",
    "sometimes i can not sleep because i keep thinking",
    "my sister called me yesterday and we had a fight",
    "i would like to try the exercise again next week",
    "it is hard for me to say what i really need",
    "thank you for listening to me today",
    "i keep telling myself that things will get better",
    "my friends do not know how i feel about it",
    "last night i dreamt that i was back at school",
    "it helps to talk about these things with someone",
]

#: Pool sentences: varied phonetic content for the target voices' frame pools.
POOL_SENTENCES = [
    "A quiet morning begins with coffee, bread and a short walk to the river.",
    "The judge gave each of the five players a bright yellow badge.",
    "Thick fog rolled over the valley while the children were singing.",
    "Please measure the width of the window before you buy the curtains.",
    "She asked whether the shop on the corner sells fresh fish on Thursdays.",
    "Our neighbour fixed the broken fence with wire, nails and patience.",
    "Jack quickly moved the heavy boxes of vinyl records into the van.",
    "A gentle voice can make a difficult conversation feel much easier.",
    "The zoo keeper fed the zebras, the goats and a very hungry owl.",
    "Bring your umbrella, because the forecast says it will pour tonight.",
    "We usually visit my grandmother in August, when the garden is full.",
    "The choir practised the song until every voice blended together.",
    "Check the oven at half past six and take the pie out when it is golden.",
    "He pushed the shiny bicycle up the hill and then coasted down.",
    "Thousands of tiny stars appeared as the city lights went out.",
    "I should have called you earlier, but the phone battery was dead.",
    "The treasure map showed a path through the jungle to a hidden cave.",
    "Would you pass me the salt, the pepper and that jar of honey?",
    "Good habits grow slowly, like a tree that nobody watches.",
    "The pilot announced a short delay because of strong winds.",
    "My brother believes that every puzzle has a simple answer.",
    "Yesterday the library lent out more books than ever before.",
    "Orange leaves covered the path and crunched under our boots.",
    "The engineer explained how the bridge carries its own weight.",
    "Sometimes the best thing to do is to sit still and breathe.",
    "Few people know that the old mill still grinds flour every June.",
    "Vivid dreams often fade a few minutes after we wake up.",
    "The teacher wrote three questions on the board and waited.",
    "Hot soup and warm socks are the answer to a cold evening.",
    "Measure twice and cut once, my father used to say.",
    "The museum opens at nine and closes at five on weekdays.",
    "A small boat drifted past the lighthouse at dawn.",
    "Which of these two roads leads to the village school?",
    "The cat watched the goldfish with great interest all afternoon.",
    "Shared laughter can turn strangers into friends.",
    "Her voice rose with excitement as she told us the news.",
    "Join us for lunch on Sunday, we are making potato pie.",
    "The thunder was loud, yet the baby kept on sleeping.",
    "Exactly how much sugar should go into this recipe?",
    "The wind chimes rang softly in the evening breeze.",
]

#: Evaluation speakers: (name, synthesizer, voice, extra args). Names must not contain "_".
EVAL_SPEAKERS = [
    ("ann", "espeak-ng", "en-us+f2", ["-p", "62", "-s", "155"]),
    ("ben", "espeak-ng", "en-us+m1", ["-p", "40", "-s", "150"]),
    ("cat", "espeak-ng", "en-gb+f4", ["-p", "55", "-s", "160"]),
    ("dan", "espeak-ng", "en-gb-scotland+m3", ["-p", "35", "-s", "145"]),
    ("eve", "espeak-ng", "en-us+klatt4", ["-p", "70", "-s", "150"]),
    ("fin", "espeak-ng", "en-029+m7", ["-p", "45", "-s", "165"]),
    ("gus", "flite", "kal16", []),
    ("hal", "espeak-ng", "en-gb-x-rp+m2", ["-p", "30", "-s", "140"]),
    ("ivy", "espeak-ng", "en-us+Alicia", ["-p", "58", "-s", "150"]),
    ("jay", "espeak-ng", "en-gb+Paul", ["-p", "42", "-s", "155"]),
    ("kay", "espeak-ng", "en-us+Belinda", ["-p", "66", "-s", "145"]),
    ("lou", "espeak-ng", "en-029+Robert", ["-p", "36", "-s", "160"]),
]


@dataclass(frozen=True)
class Utterance:
    speaker: str
    text: str
    audio: np.ndarray  # float32 mono at RATE


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        raise RavasError(
            f"{tool} is not installed; it speaks the synthetic corpus.", f"install it (Debian: apt install {tool})."
        )


def synthesize(text: str, synth: str, voice: str, extra: list[str] | None = None) -> np.ndarray:
    """Speak ``text`` with espeak-ng or flite; float32 mono at :data:`RATE`."""

    _need(synth)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.wav"
        if synth == "flite":
            cmd = ["flite", "-voice", voice, "-t", text, "-o", str(out)]
        else:
            cmd = ["espeak-ng", "-v", voice, *(extra or []), "-w", str(out), text]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
        x, rate = read_wav(out)
    if rate != RATE:
        x = soxr.resample(x, rate, RATE)
    return np.asarray(x, np.float32)


def eval_corpus(speakers: int | None = None, sentences: int | None = None) -> list[Utterance]:
    """The evaluation corpus (speakers × sentences, same sentences for everyone)."""
    out = []
    for name, synth, voice, extra in EVAL_SPEAKERS[:speakers]:
        for text in EVAL_SENTENCES[:sentences]:
            out.append(Utterance(name, text, synthesize(text, synth, voice, extra)))
    return out


def write_corpus(dest: Path, utts: list[Utterance]) -> list[Path]:
    """Write ``<speaker>_<nn>.wav`` (16-bit) + ``.txt`` per utterance; returns the wav paths."""

    dest.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    paths = []
    for u in utts:
        n = counts[u.speaker] = counts.get(u.speaker, 0) + 1
        p = dest / f"{u.speaker}_{n:02d}.wav"
        write_wav(p, u.audio, RATE)
        p.with_suffix(".txt").write_text(u.text + "\n")
        paths.append(p)
    return paths
