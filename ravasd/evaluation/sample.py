"""A voice's demonstration sample: one sentence, spoken by a synthesiser (no one's real voice),
through the voice exactly as the daemon streams it. Shared by the settings window's *Play sample*
and ``ravasd voices sample``.
"""

from __future__ import annotations

import numpy as np
import soxr

from ..audio.sources import synth_speech
from ..audio.voices import make_voice, stream
from ..config import Config, block_size
from .corpus import RATE, synthesize

SAMPLE_TEXT = "Hello, this is how my voice sounds on the call today."
_SPEECH: dict[int, np.ndarray] = {}


def sample_speech(rate: int = 48000) -> np.ndarray:
    """:data:`SAMPLE_TEXT` at ``rate`` Hz (float32): spoken by flite or espeak-ng when installed, else
    the demo source's speech-like signal. Made once per rate and process."""
    if rate not in _SPEECH:
        x = None
        for synth, voice in (("flite", "slt"), ("espeak-ng", "en-us")):
            try:
                x = soxr.resample(synthesize(SAMPLE_TEXT, synth, voice), RATE, rate).astype(np.float32)
                break
            except Exception:
                continue
        _SPEECH[rate] = x if x is not None else synth_speech(rate, seconds=3.0)
    return _SPEECH[rate]


def voice_sample(name: str, rate: int = 48000, cfg: Config | None = None) -> np.ndarray:
    """The sample sentence through voice ``name``, streamed block by block as the daemon would with
    settings ``cfg`` (its models and block size; default: built-in defaults); float32 at ``rate``."""
    cfg = cfg or Config()
    block = block_size(cfg)
    conv = make_voice(cfg, rate, name, block=block)
    try:
        return stream(conv, sample_speech(rate), rate, block).astype(np.float32)
    finally:
        conv.close()
