"""Voice converters and their registry.

Each entry: name → (factory(cfg, rate) → AudioConverter, method, description). ``rate`` is the
stream's sample rate; a converter that needs another rate resamples inside (its ``latency``
then includes the resampler's delay). :func:`make_voice` runs a voice that cannot work at the
stream rate (the vocoder and LPC voices need a multiple of 16 kHz) at 48 kHz behind soxr.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...config import Config, block_size
from ...engine.frames import RawAudio
from ...errors import ConfigError, RavasError
from .mcadams import McAdams
from .normalise import NormalisedVoice
from .phonetic import LOOKAHEAD_MS as PHONETIC_LOOKAHEAD_MS
from .phonetic import PhoneticVoice
from .phonetic import load_pool as load_phone_pool
from .resample import Resampled
from .ringmod import RingModulator
from .shift import PRESETS, PitchFormant
from .target import TARGETS, TargetVoice

#: Normalised voices: name → the voice every speaker gets (flite's voice, moved: see ``normalise.FORMANT``).
NORMALISED = {
    "alto": "a low alto (≈145 Hz), after flite's `slt` voice",
    "tenor": "a tenor (≈110 Hz), after flite's `awb` voice",
    "baritone": "a deep baritone (≈87 Hz), after flite's `rms` voice",
}


@dataclass(frozen=True)
class Voice:
    name: str
    method: str
    description: str
    factory: Callable[[Config, int], object]


def _target(name: str) -> Callable[[Config, int], object]:
    return lambda cfg, rate: TargetVoice(rate, name)


def _normalised(name: str) -> Callable[[Config, int], object]:
    return lambda cfg, rate: NormalisedVoice(rate, name)


def _phonetic(name: str) -> Callable[[Config, int], object]:
    return lambda cfg, rate: PhoneticVoice(rate, load_phone_pool(name))


def _shift(pitch: float, formant: float) -> Callable[[Config, int], object]:
    return lambda cfg, rate: PitchFormant(rate, pitch, formant)


VOICES: dict[str, Voice] = {
    v.name: v
    for v in (
        *(
            Voice(
                name,
                "speaker statistics → the target's (vocoder)",
                f"every speaker takes the spectral and pitch statistics of {desc}; words, rhythm and intonation kept",
                _normalised(name),
            )
            for name, desc in NORMALISED.items()
        ),
        *(
            Voice(
                f"{name}-knn",
                "target frames: kNN via reference speakers (vocoder)",
                f"every spectrum is one of {desc}: the strongest disguise, but many words are lost",
                _target(name),
            )
            for name, (_, desc) in TARGETS.items()
        ),
        *(
            Voice(
                f"{name}-phonetic",
                "phone encoder → the target's frames of that sound (vocoder)",
                f"each sound the phone encoder hears, said by {desc}: the speaker's spectrum never "
                f"reaches the output; {PHONETIC_LOOKAHEAD_MS} ms look-ahead",
                _phonetic(name),
            )
            for name, (_, desc) in TARGETS.items()
        ),
        *(
            Voice(name, f"pitch ×{p:g} + formants ×{f:g} (vocoder)", desc, _shift(p, f))
            for name, (p, f, desc) in PRESETS.items()
        ),
        Voice(
            "ringmod",
            "ring modulation",
            "robot-like voice (30 Hz carrier); weak anonymization, zero latency; the engine's reference voice",
            lambda cfg, rate: RingModulator(rate),
        ),
        Voice(
            "mcadams",
            "McAdams coefficient (VPC B2)",
            "LPC pole angles warped (α = 0.8): formants move, "
            "words and pitch stay; weak against an informed attacker — the research baseline",
            lambda cfg, rate: McAdams(rate, 0.8),
        ),
    )
}


def neural(cfg: Config) -> dict:
    """The neural voices (installed pools and the built-in ones Mimi would make), usable or not."""
    from ..neural.registry import neural_voices

    return neural_voices(cfg)


def voice_names(cfg: Config, usable_only: bool = False) -> list[str]:
    """Every name ``audio.voice`` may take: the built-in voices, then the neural ones."""
    return list(VOICES) + [n for n, v in neural(cfg).items() if v.available or not usable_only]


def make_voice(cfg: Config, rate: int, name: str | None = None, block: int | None = None, live: bool = False) -> object:
    """Build the voice ``name`` (default ``cfg.audio.voice``) for a stream at ``rate`` Hz.

    ``block``: every call will bring exactly this many samples (the daemon's audio blocks); a
    voice may then drop look-ahead it only needs for arbitrary block sizes (see ``fit_blocks``).
    Without it the voice accepts any block size. ``live``: for the daemon's stream — a neural voice
    then computes on its own thread behind a margin that follows its measured waits
    (``neural.offload``); offline runs leave it off and get the exact, deterministic voice."""
    name = name or cfg.audio.voice
    if name in VOICES:
        factory = VOICES[name].factory
    elif name in neural(cfg):
        from ..neural.registry import make

        def factory(cfg: Config, rate: int) -> object:
            return make(cfg, rate, name, live)
    else:
        raise ConfigError(
            f"audio.voice: unknown voice {name!r}.",
            f"choose one of: {', '.join(voice_names(cfg))} (`ravasd voices list`).",
        )
    return at_rate(factory, cfg, rate, block)


def at_rate(factory: Callable[[Config, int], object], cfg: Config, rate: int, block: int | None = None) -> object:
    """``factory(cfg, rate)``, or — when it raises ValueError for a rate it cannot run at (a 44.1 kHz
    device; the voices need a multiple of 16/24 kHz) — the voice at 48 kHz behind soxr; then
    ``fit_blocks(block)`` where the voice has it."""
    try:
        voice = factory(cfg, rate)
    except ValueError:
        return Resampled(factory(cfg, 48000), rate, 48000)
    if block and hasattr(voice, "fit_blocks"):
        voice.fit_blocks(block)
    return voice


def latency_ms(cfg: Config, name: str, live: bool = False) -> float:
    """The latency voice ``name`` adds at ``cfg``'s rate and block size, in ms (``live``: a neural
    voice's includes the compute margin it measures as the daemon runs it — it loads the model); NaN
    when the voice cannot be built now."""
    try:
        conv = make_voice(cfg, cfg.audio.sample_rate, name, block=block_size(cfg), live=live)
    except RavasError:
        return float("nan")
    try:
        return getattr(conv, "latency", 0) / cfg.audio.sample_rate * 1000
    finally:
        conv.close()


def stream(conv, x: np.ndarray, rate: int, block: int, tail: int = 0) -> np.ndarray:
    """``x`` (float32 at ``rate``) and ``tail`` zeros after it through voice ``conv`` in whole blocks of
    ``block`` samples, as the daemon sends them (the last block zero-padded); every output sample."""
    n = -(-(len(x) + tail) // block) * block
    src = np.concatenate([np.asarray(x, np.float32), np.zeros(n - len(x), np.float32)])
    return np.concatenate([conv.process(RawAudio(src[i : i + block], rate, 0.0)).samples for i in range(0, n, block)])
