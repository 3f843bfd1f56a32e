"""Mimi-VC at run time on onnxruntime: 80 ms frames, encoder → kNN on a target pool → decoder.

Latency: one frame (1920 samples at 24 kHz) of look-ahead — a latent needs its whole frame — plus
the 48↔24 kHz FIR pair; with blocks of whole frames (``fit_blocks``) the look-ahead goes. Any other
block size streams exactly too (frames are cut from the sample count, never from block edges), so
streamed output equals the offline run of the same graphs sample for sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import ModelError
from ..voices.base import InnerRateVoice
from . import mimi_arch as arch
from .pools import Pool
from .runtime import StatefulGraph, load_manifest

FORMAT = 2  # the manifest format this code reads (2: encoder at 25 Hz + numpy downsample)


class Downsample:
    """Mimi's learnt stride-2 conv from 25 Hz embeddings to 12.5 Hz latents, streamed in numpy.
    Kernel 4, replicate padding at the stream's start: latent j reads embeddings 2j−2 … 2j+1."""

    def __init__(self, weight: np.ndarray) -> None:
        self.w = np.ascontiguousarray(weight, np.float32)  # (D_out, D_in, 4)
        self.reset()

    def reset(self) -> None:
        self.prev: np.ndarray | None = None  # the last two embeddings
        self.pending = np.zeros((0, self.w.shape[1]), np.float32)

    def __call__(self, emb: np.ndarray) -> np.ndarray:
        """(n, D) embeddings → (n // 2 + carried, D) latents: each complete pair makes one."""
        if len(emb) and self.prev is None:
            self.prev = np.repeat(emb[:1], 2, axis=0)
        self.pending = np.concatenate([self.pending, emb])
        m = len(self.pending) // 2
        if not m:
            return np.zeros((0, self.w.shape[0]), np.float32)
        seq = np.concatenate([self.prev, self.pending[: 2 * m]])
        self.prev, self.pending = seq[-2:], self.pending[2 * m :]
        win = np.stack([seq[2 * j : 2 * j + 4] for j in range(m)])  # (m, 4, D)
        return np.einsum("oit,mti->mo", self.w, win, optimize=True).astype(np.float32)


class MimiModel:
    """The stateful graphs of an installed Mimi folder (see :mod:`.export`)."""

    def __init__(self, folder: Path, device: str = "cpu", threads: int = 1) -> None:
        self.folder = Path(folder)
        self.manifest = load_manifest(self.folder)
        if self.manifest.get("format") != FORMAT:
            raise ModelError(
                f"{self.folder} was made by another RAVAS version (format "
                f"{self.manifest.get('format')}, this one reads {FORMAT}).",
                "install the model again (`ravasd models fetch mimi`, or `ravasd models add mimi FILE`).",
            )
        self.cfg = arch.MimiConfig.from_dict(self.manifest["config"])
        g = self.manifest["graphs"]
        self.encoder = StatefulGraph(self.folder / g["encoder"]["file"], g["encoder"]["states"], device, threads)
        self.decoder = StatefulGraph(self.folder / g["decoder"]["file"], g["decoder"]["states"], device, threads)
        try:
            self.down = Downsample(np.load(self.folder / "downsample.npy", allow_pickle=False))
        except (OSError, ValueError) as err:
            raise ModelError(
                f"{self.folder}/downsample.npy cannot be read ({err}).", "install the model again."
            ) from None

    @property
    def frame(self) -> int:
        return self.cfg.frame

    @property
    def hop(self) -> int:
        return self.cfg.hop

    def reset(self) -> None:
        self.encoder.reset()
        self.decoder.reset()
        self.down.reset()

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """(n·hop,) samples at 24 kHz → (n, D) embeddings at 25 Hz; state carried."""
        return self.encoder(np.asarray(audio, np.float32).reshape(1, 1, -1))[0].T

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """(n·hop,) samples → the latents now complete (one per two hops); state carried."""
        return self.down(self.embed(audio))

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """(n, D) latents → (n·frame,) samples; state carried."""
        return self.decoder(np.asarray(latents, np.float32).T[None])[0, 0]

    def latents(self, audio: np.ndarray, chunk_s: float = 10.0) -> np.ndarray:
        """All latents of a recording (24 kHz), from a fresh state, ``chunk_s`` at a time (bounded
        memory; the same latents as one call). A partial last frame is dropped."""
        self.encoder.reset()
        self.down.reset()
        step = max(1, int(chunk_s * self.cfg.sample_rate) // self.frame) * self.frame
        n = len(audio) // self.frame * self.frame
        out = [self.encode(audio[i : i + step]) for i in range(0, n, step)]
        self.encoder.reset()
        self.down.reset()
        return np.concatenate(out) if out else np.zeros((0, self.cfg.dimension), np.float32)


class MimiVC(InnerRateVoice):
    """A streaming voice: input at 24 kHz → frames of 1920 samples → one Mimi latent each, replaced by
    the mean of its ``k`` nearest target latents → decoded.
    ``latency`` in stream samples (one frame of look-ahead + the resampling FIRs)."""

    inner_rate = 24000
    GATE_DB, GATE_WINDOW, GATE_HOLD = -55.0, 240, 2  # dBFS, samples (10 ms at 24 kHz), windows

    def __init__(self, rate: int, model: MimiModel, pool: Pool, k: int = 4) -> None:
        self.model, self.pool, self.k = model, pool, k
        self.hop_lookahead = model.frame
        super().__init__(rate, model.frame)

    def _reset_inner(self) -> None:
        self.model.reset()
        self._in = np.zeros(0, np.float32)
        self._quiet = self.GATE_HOLD + 1  # quiet windows in a row (silent before the stream)

    def _inner(self, x: np.ndarray) -> np.ndarray:
        # Whole frames only: encoding each 40 ms half as it arrives measured 17.5 ms per half against
        # 21 ms per whole frame (the transformer reads all its weights per call), 40 % more CPU for
        # a 4 ms shorter burst.
        self._in = np.concatenate([self._in, x])
        n = len(self._in) // self.model.frame
        if not n:
            return np.zeros(0, np.float32)
        frames, self._in = self._in[: n * self.model.frame], self._in[n * self.model.frame :]
        y = self.model.decode(self.pool.convert(self.model.encode(frames), self.k))
        return self._gate(frames, y)

    def _gate(self, frames: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Silence in → silence out, at 10 ms resolution: where the input has been below ``GATE_DB``
        (RMS, dBFS) for ``GATE_HOLD`` windows, the output is zeros — the decoder's idle hiss never
        reaches the call. Output sample i of a frame is input sample i delayed, so the gate opens
        exactly where sound starts. The models run regardless: their state, and streamed == offline,
        are unchanged."""
        w = self.GATE_WINDOW
        rms = np.sqrt(np.mean(frames.reshape(-1, w) ** 2, axis=1))
        for i, quiet in enumerate(rms < 10 ** (self.GATE_DB / 20)):
            self._quiet = self._quiet + 1 if quiet else 0
            if self._quiet > self.GATE_HOLD:
                y[i * w : (i + 1) * w] = 0.0
        return y
