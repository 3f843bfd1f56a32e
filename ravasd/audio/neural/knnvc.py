"""kNN-VC from RAVAS's ONNX checkpoints: WavLM (layer 6) features → kNN on a target pool → HiFi-GAN.

RAVAS exports fixed-size graphs per chunk length S (16 kHz samples): ``wavlm_{S}.onnx`` (input
``input`` (1, S) → ``output`` (1, S//320 − 1, 1024)) and ``hifigan_{S}.onnx`` (input (1, S//320 − 1, 1024)
→ a waveform of (S//320 − 1)·320 samples). Streaming, as RAVAS does it: every ``hop`` = S − context
new samples, the last S input samples (the previous ``context`` samples + the new hop; zeros before
the stream began) are converted and the output's last ``hop`` samples are kept; their first 450
samples are blended with the previous output's last 450 (a triangular weight rising to 0.75 and
back: :func:`crossfade_weights`), which hides the seam between chunks.

Latency (16 kHz samples): one hop of look-ahead, plus the 320 samples at the window's end that
HiFi-GAN's output does not reach, plus the 48↔16 kHz FIR pair.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from ... import paths
from ...errors import ConfigError, ModelError
from ..voices.base import InnerRateVoice
from .pools import Pool
from .runtime import session

FEATURE_HOP = 320  # WavLM's stride at 16 kHz
DIM = 1024
XFADE, XFADE_WEIGHT = 450, 0.75


def knnvc_dir(configured: str | None = None) -> Path:
    return Path(configured).expanduser() if configured else paths.cache_dir() / "models" / "knnvc"


def files_for(chunk: int) -> list[str]:
    return [f"wavlm_{chunk}.onnx", f"hifigan_{chunk}.onnx"]


def missing_files(folder: Path, chunk: int) -> list[str]:
    return [f for f in files_for(chunk) if not (folder / f).is_file()]


def crossfade_weights(n: int = XFADE, peak: float = XFADE_WEIGHT) -> np.ndarray:
    up = np.linspace(0.0, peak, n // 2, dtype=np.float32)
    return np.concatenate([up, up[::-1]])


class KnnVCModel:
    """The two graphs for chunk length ``chunk``; checks their input/output names and shapes on load."""

    def __init__(self, folder: Path, chunk: int, device: str = "cpu", threads: int = 1) -> None:
        folder = Path(folder)
        miss = missing_files(folder, chunk)
        if miss:
            raise ModelError(
                f"{folder} lacks {', '.join(miss)} (kNN-VC with chunks of {chunk} samples).",
                "run `ravasd models add knnvc DIR` with RAVAS's ONNX folder, or set audio.knnvc_chunk "
                "to a size whose files you have.",
            )
        self.chunk, self.frames = chunk, chunk // FEATURE_HOP - 1
        self.wavlm = session(folder / f"wavlm_{chunk}.onnx", device, threads)
        self.hifigan = session(folder / f"hifigan_{chunk}.onnx", device, threads)
        feats = self.features(np.zeros(chunk, np.float32))
        if feats.shape != (self.frames, DIM):
            raise ModelError(
                f"{folder}/wavlm_{chunk}.onnx gives features of shape {feats.shape}, RAVAS's give "
                f"({self.frames}, {DIM}).",
                "use RAVAS's wavlm_<S>.onnx files.",
            )
        self.out_len = len(self.synthesize(feats))
        if not 0 < self.out_len <= chunk:
            raise ModelError(
                f"{folder}/hifigan_{chunk}.onnx makes {self.out_len} samples from one chunk of {chunk}.",
                "use RAVAS's hifigan_<S>.onnx files.",
            )

    def features(self, x: np.ndarray) -> np.ndarray:
        """(chunk,) samples → (frames, 1024)."""
        out = self.wavlm.run(None, {self.wavlm.get_inputs()[0].name: np.asarray(x, np.float32)[None]})[0]
        return np.asarray(out, np.float32).reshape(-1, out.shape[-1])

    def synthesize(self, feats: np.ndarray) -> np.ndarray:
        out = self.hifigan.run(None, {self.hifigan.get_inputs()[0].name: np.asarray(feats, np.float32)[None]})[0]
        return np.asarray(out, np.float32).reshape(-1)

    def pool_features(self, audio: np.ndarray) -> np.ndarray:
        """Features of a whole recording (16 kHz) in chunks whose frames tile it: (N, 1024)."""
        step = self.frames * FEATURE_HOP
        if len(audio) < self.chunk:
            audio = np.pad(audio, (0, self.chunk - len(audio)))
        out = [self.features(audio[i : i + self.chunk]) for i in range(0, len(audio) - self.chunk + 1, step)]
        return np.concatenate(out)


class KnnVC(InnerRateVoice):
    """Streaming kNN-VC (see the module docstring); ``latency`` in stream samples."""

    inner_rate = 16000

    def __init__(
        self, rate: int, model: KnnVCModel, pool: Pool, k: int = 4, context: int = 3200, crossfade: bool = True
    ) -> None:
        lag = model.chunk - model.out_len  # input samples at the window's end HiFi-GAN's output does not reach
        if not lag <= context < model.chunk or (model.chunk - context) % FEATURE_HOP:
            raise ConfigError(
                f"audio.knnvc_context: {context} samples of earlier audio do not fit chunks of "
                f"{model.chunk} (HiFi-GAN's output ends {lag} samples before a chunk does, so the "
                f"context must be at least that, and the rest whole 320-sample steps).",
                f"choose a context from {lag} to {model.chunk - FEATURE_HOP} in steps of 320.",
            )
        self.model, self.pool, self.k = model, pool, k
        self.hop = model.chunk - context
        self.hop_lookahead = self.hop
        self.crossfade = crossfade
        self._w = crossfade_weights(min(XFADE, self.hop))
        super().__init__(rate, self.hop)
        self.latency += self.factor * lag
        self._delay += self.factor * lag

    def _reset_inner(self) -> None:
        self._in = np.zeros(self.model.chunk, np.float32)  # the window: zeros before the stream began
        self._pending = np.zeros(0, np.float32)
        self._tail = np.zeros(len(self._w), np.float32)

    def _convert(self, window: np.ndarray) -> np.ndarray:
        feats = self.pool.convert(self.model.features(window), self.k)
        y = self.model.synthesize(feats)[-self.hop :].copy()
        if self.crossfade:
            n = len(self._w)
            y[:n] = y[:n] + self._w * (self._tail - y[:n])
            self._tail = y[-n:].copy()
        return y

    def _inner(self, x: np.ndarray) -> np.ndarray:
        self._pending = np.concatenate([self._pending, x])
        out = []
        while len(self._pending) >= self.hop:
            new, self._pending = self._pending[: self.hop], self._pending[self.hop :]
            self._in = np.concatenate([self._in[self.hop :], new])
            out.append(self._convert(self._in))
        return np.concatenate(out) if out else np.zeros(0, np.float32)


def add(src: Path, dest: Path | None = None) -> tuple[Path, list[int]]:
    """Copy RAVAS's kNN-VC ONNX files from ``src`` into the cache (each graph checked to load and to
    have RAVAS's shapes first; a staging folder renamed into place). Returns the folder and the chunk
    sizes found."""
    src, dest = Path(src).expanduser(), dest or knnvc_dir()
    if not src.is_dir():
        raise ModelError(f"{src} is not a folder.", "pass the folder with RAVAS's wavlm_<S>.onnx and hifigan_<S>.onnx.")
    sizes = sorted(
        {
            int(p.stem.split("_")[1])
            for p in src.glob("wavlm_*.onnx")
            if p.stem.split("_")[1].isdigit() and (src / f"hifigan_{p.stem.split('_')[1]}.onnx").is_file()
        }
    )
    if not sizes:
        raise ModelError(
            f"{src} holds no pair of wavlm_<S>.onnx and hifigan_<S>.onnx.",
            "pass the folder RAVAS's compile step wrote them to (its onnx/ folder).",
        )
    for s in sizes:
        KnnVCModel(src, s)  # raises with the file named when a graph is broken or of another shape
    stage = dest.with_name(f".{dest.name}.staging")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        for s in sizes:
            for f in files_for(s):
                shutil.copy2(src / f, stage / f)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if dest.exists():
        for f in stage.iterdir():  # merge: sizes added earlier stay
            f.replace(dest / f.name)
        stage.rmdir()
    else:
        stage.rename(dest)
    return dest, sizes
