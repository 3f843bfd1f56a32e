"""Making the target speech the built-in Mimi-VC voices are built from (``ravasd/audio/neural/speech/``).

flite's CMU voices (BSD-style licence) read the project's pool sentences (MIT), joined by 0.3 s pauses,
peak-normalised to −6 dBFS and encoded as Ogg/Opus (:func:`ravasd.audio.neural.speech.encode`).
``python -m ravasd.evaluation.target_speech [NAME...]`` rewrites the shipped files (needs flite).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..audio.neural import speech
from .corpus import POOL_SENTENCES, RATE
from .corpus import synthesize as say


def synthesize(name: str) -> tuple[np.ndarray, int]:
    """The speech of ``name`` before encoding, and its rate."""
    voice = speech.SPEAKERS[name][0]
    pause = np.zeros(int(speech.PAUSE_S * RATE), np.float32)
    parts = []
    for text in POOL_SENTENCES:
        parts += [say(text, "flite", voice), pause]
    x = np.concatenate(parts)
    return (0.5 * x / max(1e-6, float(np.max(np.abs(x))))).astype(np.float32), RATE


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(speech.SPEAKERS)
    folder = Path(speech.__file__).parent / "speech"
    folder.mkdir(exist_ok=True)
    for name in names:
        x, rate = synthesize(name)
        out = folder / speech.file_name(name)
        out.write_bytes(speech.encode(x, rate))
        print(f"{name}: {len(x) / rate:.1f} s, {out.stat().st_size / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
