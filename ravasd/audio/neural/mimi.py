"""Mimi-VC at run time on onnxruntime: 80 ms frames, encoder → kNN on a target pool → decoder.

Latency: one frame (1920 samples at 24 kHz) of look-ahead — a latent needs its whole frame — plus
the 48↔24 kHz FIR pair; with blocks of whole frames (``fit_blocks``) the look-ahead goes. Any other
block size streams exactly too (frames are cut from the sample count, never from block edges), so
streamed output equals the offline run of the same graphs sample for sample.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..voices.base import InnerRateVoice
from . import mimi_arch as arch
from .pools import Pool
from .runtime import StatefulGraph, load_manifest


class MimiModel:
    """The two stateful graphs of an installed Mimi folder (see :mod:`.export`)."""

    def __init__(self, folder: Path, device: str = "cpu", threads: int = 1) -> None:
        self.folder = Path(folder)
        self.manifest = load_manifest(self.folder)
        self.cfg = arch.MimiConfig.from_dict(self.manifest["config"])
        g = self.manifest["graphs"]
        self.encoder = StatefulGraph(self.folder / g["encoder"]["file"], g["encoder"]["states"], device, threads)
        self.decoder = StatefulGraph(self.folder / g["decoder"]["file"], g["decoder"]["states"], device, threads)

    @property
    def frame(self) -> int:
        return self.cfg.frame

    def reset(self) -> None:
        self.encoder.reset()
        self.decoder.reset()

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """(n·frame,) samples at 24 kHz → (n, D) latents; state carried."""
        return self.encoder(np.asarray(audio, np.float32).reshape(1, 1, -1))[0].T

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """(n, D) latents → (n·frame,) samples; state carried."""
        return self.decoder(np.asarray(latents, np.float32).T[None])[0, 0]

    def latents(self, audio: np.ndarray, chunk_s: float = 10.0) -> np.ndarray:
        """All latents of a recording (24 kHz), from a fresh encoder state, ``chunk_s`` at a time
        (bounded memory; the same latents as one call). A partial last frame is dropped."""
        self.encoder.reset()
        step = max(1, int(chunk_s * self.cfg.sample_rate) // self.frame) * self.frame
        n = len(audio) // self.frame * self.frame
        out = [self.encode(audio[i:i + step]) for i in range(0, n, step)]
        self.encoder.reset()
        return np.concatenate(out) if out else np.zeros((0, self.cfg.dimension), np.float32)


class MimiVC(InnerRateVoice):
    """A streaming voice: input → frames of 1920 samples at 24 kHz → Mimi latents → each replaced by
    the mean of its ``k`` nearest target latents → decoded. ``latency`` in stream samples."""

    inner_rate = 24000

    def __init__(self, rate: int, model: MimiModel, pool: Pool, k: int = 4) -> None:
        self.model, self.pool, self.k = model, pool, k
        self.hop_lookahead = model.frame
        super().__init__(rate, model.frame)

    def _reset_inner(self) -> None:
        self.model.reset()
        self._in = np.zeros(0, np.float32)

    def _inner(self, x: np.ndarray) -> np.ndarray:
        self._in = np.concatenate([self._in, x])
        n = len(self._in) // self.model.frame
        if not n:
            return np.zeros(0, np.float32)
        frames, self._in = self._in[: n * self.model.frame], self._in[n * self.model.frame:]
        z = self.model.encode(frames)
        return self.model.decode(self.pool.convert(z, self.k))
