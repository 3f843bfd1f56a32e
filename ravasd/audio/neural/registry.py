"""The neural voices a user has, and those they could have: name → :class:`NeuralVoice`.

Read by the voice registry (``make_voice``, name checks), ``voices list``, ``doctor``, the tray and the
settings window. Cheap: reads ``voice.json`` files and manifests, loads no model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ...config import Config
from ...errors import ConfigError
from . import pools

FETCH_FIX = (
    "run `ravasd models fetch mimi` (downloads Kyutai's Mimi, ~385 MB, CC-BY-4.0; needs PyTorch once "
    "to export it: `pip install torch==2.13.0 onnx onnx-ir`), or `ravasd models add mimi FILE` with a copy of "
    "tokenizer-e351c8d8-checkpoint125.safetensors"
)
KNNVC_FIX = "run `ravasd models add knnvc DIR` with the folder holding RAVAS's wavlm_<S>.onnx and hifigan_<S>.onnx"
#: Shown (unavailable) before Mimi is installed; installing builds them.
PLACEHOLDERS = {
    "mimi-alto": "Mimi-VC towards an alto voice (flite's slt), built when Mimi is installed",
    "mimi-tenor": "Mimi-VC towards a tenor voice (flite's awb), built when Mimi is installed",
}
METHOD_TEXT = {
    "mimi": "Mimi-VC: kNN over Kyutai Mimi latents (neural)",
    "knnvc": "kNN-VC: WavLM features + HiFi-GAN (neural)",
}


@dataclass(frozen=True)
class NeuralVoice:
    name: str
    method: str
    description: str
    fix: str | None  # None = usable now; else what to do

    @property
    def available(self) -> bool:
        return self.fix is None


def mimi_folder(cfg: Config) -> Path:
    from .install import mimi_dir

    return mimi_dir(cfg.models.mimi)


def knnvc_folder(cfg: Config) -> Path:
    from .knnvc import knnvc_dir

    return knnvc_dir(cfg.models.knnvc)


def _model_fix(cfg: Config, method: str) -> str | None:
    if method == "mimi":
        from .mimi_arch import FORMAT

        man = mimi_folder(cfg) / "manifest.json"
        if not man.is_file():
            return FETCH_FIX
        try:
            fmt = json.loads(man.read_text()).get("format")
        except (OSError, ValueError, AttributeError):
            fmt = None
        if fmt != FORMAT:
            return (
                f"the Mimi in {man.parent} was made by another RAVAS version (format {fmt}, this one reads "
                f"{FORMAT}): install it again with `ravasd models fetch mimi` (or `ravasd models add mimi FILE`)"
            )
        return None
    if method == "knnvc":
        from .knnvc import missing_files

        miss = missing_files(knnvc_folder(cfg), cfg.audio.knnvc_chunk)
        return None if not miss else f"{KNNVC_FIX} (missing: {', '.join(miss)})"
    return f"this RAVAS does not know the method {method!r}; build the voice again"


def neural_voices(cfg: Config) -> dict[str, NeuralVoice]:
    out: dict[str, NeuralVoice] = {}
    for name, meta in pools.installed().items():
        method = meta.get("method", "mimi")
        desc = meta.get("description") or f"{METHOD_TEXT.get(method, method)} towards {name}"
        out[name] = NeuralVoice(name, method, desc, _model_fix(cfg, method))
    for name, desc in PLACEHOLDERS.items():
        out.setdefault(
            name, NeuralVoice(name, "mimi", desc, _model_fix(cfg, "mimi") or f"the voice was not built: {FETCH_FIX}")
        )
    return out


def make(cfg: Config, rate: int, name: str, live: bool = False):
    """Build the neural voice ``name`` for a stream at ``rate`` Hz (ConfigError/ModelError with the fix
    when it is not usable). Raises ValueError for rates its resampler cannot take (see make_voice).
    ``live``: computed on a worker thread behind a measured margin (:mod:`.offload`), for the daemon."""
    voice = _make(cfg, rate, name)
    return offloaded(cfg, voice, rate) if live else voice


def offloaded(cfg: Config, voice, rate: int):
    """``voice`` (a MimiVC / KnnVC at ``rate``) on its own thread, starting behind the margin its frames
    (its look-ahead unit), fed in ``audio.block_ms`` blocks, measure now; the margin then follows the
    measured waits (:mod:`.offload`)."""
    from .offload import Offloaded, measure_margin

    frame = voice.factor * voice.hop_lookahead
    block = max(1, int(round(cfg.audio.block_ms * rate / 1000)))
    margin = measure_margin(voice, rate, frame, block if frame % block == 0 else None)
    return Offloaded(voice, rate, margin, cfg.engine.hang_timeout_ms / 1000)


def _make(cfg: Config, rate: int, name: str):
    voice = neural_voices(cfg).get(name)
    if voice is None:
        raise KeyError(name)
    if not voice.available:
        raise ConfigError(f"audio.voice: the voice {name!r} is not usable yet.", voice.fix)
    inner = 24000 if voice.method == "mimi" else 16000
    if rate % inner:  # before loading anything: make_voice then runs us at 48 kHz behind soxr
        raise ValueError(f"{name} runs at a multiple of {inner} Hz, not {rate}")
    pool = pools.load(name)
    if cfg.audio.pool_seconds:
        rate_hz = 12.5 if voice.method == "mimi" else 50.0
        pool = pools.Pool(
            pool.name, pool.method, pool.vectors[: max(1, int(cfg.audio.pool_seconds * rate_hz))], pool.meta
        )
    if voice.method == "mimi":
        from .mimi import MimiModel, MimiVC

        model = MimiModel(mimi_folder(cfg), cfg.audio.device)
        if pool.vectors.shape[1] != model.cfg.dimension:
            raise ConfigError(
                f"audio.voice: {name}'s pool has {pool.vectors.shape[1]}-d vectors, Mimi {model.cfg.dimension}-d.",
                f"build it again (`ravasd voices build {name} --from DIR --force`).",
            )
        return MimiVC(rate, model, pool, cfg.audio.knn_k)
    from .knnvc import KnnVC, KnnVCModel

    model = KnnVCModel(knnvc_folder(cfg), cfg.audio.knnvc_chunk, cfg.audio.device)
    return KnnVC(rate, model, pool, cfg.audio.knn_k, cfg.audio.knnvc_context)


def nominal_latency_ms(cfg: Config, method: str) -> float:
    """A neural voice's algorithmic latency at ``cfg``'s settings without loading its model: the look-ahead
    (one Mimi frame, or one kNN-VC hop plus the feature hop HiFi-GAN does not reach) and the 48 kHz
    resampling FIRs (``InnerRateVoice.taps``). The daemon adds the compute margin it measures on load."""
    from ..voices.base import InnerRateVoice
    from .knnvc import FEATURE_HOP
    from .mimi_arch import FULL

    if method == "mimi":
        ms = FULL.frame / FULL.sample_rate * 1000
    else:
        ms = (cfg.audio.knnvc_chunk - cfg.audio.knnvc_context + FEATURE_HOP) / 16.0
    return round(ms + (InnerRateVoice.taps - 1) / 48.0, 1)
