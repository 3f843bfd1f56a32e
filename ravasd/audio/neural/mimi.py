"""Mimi-VC at run time on onnxruntime: 80 ms frames, encoder → kNN on a target pool → decoder.

Latency: one frame (1920 samples at 24 kHz) of look-ahead — a latent needs its whole frame — plus
the 48↔24 kHz FIR pair, plus (live) the compute margin. The work is staged so that little of it waits
for the frame's end (:class:`MimiVC`): the encoder's convolutions and its stride-8 tail run on each
40 ms as it arrives; at the frame's end only the transformers, the kNN and the first decoder
steps stand between the last input sample and the first output sample, and the rest of the frame's
output is computed while that plays. Streamed output equals the offline run of the same graphs sample
for sample, whatever the block size (frames are cut from the sample count, never from block edges).
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

import numpy as np

from ...errors import ModelError
from ..voices.base import InnerRateVoice
from . import mimi_arch as arch
from .pools import Pool
from .runtime import StatefulGraph, load_manifest

FORMAT = arch.FORMAT  # the manifest format this code reads


class Downsample:
    """Mimi's learnt stride-2 conv from 25 Hz embeddings to 12.5 Hz latents, streamed in numpy.
    Kernel 4, replicate padding at the stream's start: latent j reads embeddings 2j−2 … 2j+1."""

    def __init__(self, weight: np.ndarray) -> None:
        w = np.asarray(weight, np.float32)  # (D_out, D_in, 4)
        self.dims = w.shape[:2]
        # as one matrix over (tap, channel) windows: einsum re-laid the weights out at every call
        self.wt = np.ascontiguousarray(w.transpose(2, 1, 0).reshape(-1, w.shape[0]))  # (4·D_in, D_out)
        self.reset()

    def reset(self) -> None:
        self.prev: np.ndarray | None = None  # the last two embeddings
        self.pending = np.zeros((0, self.dims[1]), np.float32)

    def __call__(self, emb: np.ndarray) -> np.ndarray:
        """(n, D) embeddings → (n // 2 + carried, D) latents: each complete pair makes one."""
        if len(emb) and self.prev is None:
            self.prev = np.repeat(emb[:1], 2, axis=0)
        self.pending = np.concatenate([self.pending, emb])
        m = len(self.pending) // 2
        if not m:
            return np.zeros((0, self.dims[0]), np.float32)
        seq = np.concatenate([self.prev, self.pending[: 2 * m]])
        self.prev, self.pending = seq[-2:], self.pending[2 * m :]
        win = np.stack([seq[2 * j : 2 * j + 4].reshape(-1) for j in range(m)])  # (m, 4·D_in)
        return (win @ self.wt).astype(np.float32)


class MimiModel:
    """The stateful stage graphs of an installed Mimi folder (see :mod:`.export`); ``g[name]`` one of
    :data:`~.mimi_arch.STAGE_NAMES`. Whole-hop helpers (``embed``/``encode``/``decode``/``latents``) for
    offline work and checks; the streaming voice drives the stages itself."""

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
        graphs = self.manifest.get("graphs", {})
        missing = [n for n in arch.STAGE_NAMES if n not in graphs]
        if missing:
            raise ModelError(
                f"{self.folder}/manifest.json lists no graph for {', '.join(missing)}.", "install the model again."
            )
        self.g = {
            n: StatefulGraph(self.folder / graphs[n]["file"], graphs[n]["states"], device, threads)
            for n in arch.STAGE_NAMES
        }
        try:
            self.down = Downsample(np.load(self.folder / "downsample.npy", allow_pickle=False))
        except (OSError, ValueError) as err:
            raise ModelError(
                f"{self.folder}/downsample.npy cannot be read ({err}).", "install the model again."
            ) from None
        self.mid = arch.mid_hop(self.cfg)  # samples per 200 Hz step between the SEANet stages

    @property
    def frame(self) -> int:
        return self.cfg.frame

    @property
    def hop(self) -> int:
        return self.cfg.hop

    def reset(self) -> None:
        for g in self.g.values():
            g.reset()
        self.down.reset()

    def run(self, name: str, x: np.ndarray) -> np.ndarray:
        """Stage ``name`` on (C, T) → (C', T'); state carried."""
        return self.g[name](np.asarray(x, np.float32)[None])[0]

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """(n·hop,) samples at 24 kHz → (n, D) embeddings at 25 Hz; state carried."""
        z = self.run("encoder.convs", np.asarray(audio, np.float32).reshape(1, -1))
        return self.run("encoder.transformer", self.run("encoder.tail", z)).T

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """(n·hop,) samples → the latents now complete (one per two hops); state carried."""
        return self.down(self.embed(audio))

    def decode(self, latents: np.ndarray) -> np.ndarray:
        """(n, D) latents → (n·frame,) samples; state carried."""
        z = self.run("decoder.transformer", np.asarray(latents, np.float32).T)
        return self.run("decoder.convs", self.run("decoder.up", z))[0]

    def latents(self, audio: np.ndarray, chunk_s: float = 10.0) -> np.ndarray:
        """All latents of a recording (24 kHz), from a fresh state, ``chunk_s`` at a time (bounded
        memory; the same latents as one call). A partial last frame is dropped."""
        self.reset()
        step = max(1, int(chunk_s * self.cfg.sample_rate) // self.frame) * self.frame
        n = len(audio) // self.frame * self.frame
        out = [self.encode(audio[i : i + step]) for i in range(0, n, step)]
        self.reset()
        return np.concatenate(out) if out else np.zeros((0, self.cfg.dimension), np.float32)


class MimiVC(InnerRateVoice):
    """A streaming voice: input at 24 kHz → frames of 1920 samples → one Mimi latent each, replaced by
    the mean of its ``k`` nearest target latents → decoded. ``latency`` in stream samples (one frame of
    look-ahead + the resampling FIRs).

    A pull voice (see :class:`~ravasd.audio.voices.base.InnerRateVoice`): input is kept, and work is
    done in data-flow order only as far as the output due needs it — or, from a worker's
    :meth:`prepare`, as far as the next call will need plus every input-side stage already possible.
    Granularity (measured on the published architecture, one core here, where every stage is bound by
    reading its weights, so each call costs about a read of them): the encoder's convolutions and tail
    per 40 ms (per 5 ms block the convolutions cost 3.5× the CPU), each transformer once per frame
    (both 25 Hz steps in one call), the decoder's upsampling per 40 ms and its convolutions on a
    frame's first ``FIRST_STEPS`` 5 ms steps, then on the rest of each 40 ms. ``path_ms`` keeps, for
    recent frames, how long the work between a frame's last input and its first output took, by part
    (``encoder_tail``: the last convolutions, tail, transformer and downsample; ``knn``;
    ``decoder_head``: the decoder transformer, upsampling and the first output step)."""

    inner_rate = 24000
    GATE_DB, GATE_HOLD = -55.0, 4  # dBFS; quiet 5 ms windows before the gate closes (20 ms)
    ENC_STEPS = 8  # 5 ms steps per call of the encoder's convolutions when computing ahead (see above)
    FIRST_STEPS = 1  # 5 ms steps of a frame's first output (the end of its critical path)

    def __init__(self, rate: int, model: MimiModel, pool: Pool, k: int = 4) -> None:
        self.model, self.pool, self.k = model, pool, k
        self.hop_lookahead = model.frame
        self.path_ms: collections.deque[dict] = collections.deque(maxlen=64)
        super().__init__(rate, model.frame)

    def _reset_inner(self) -> None:
        m = self.model
        m.reset()
        self._raw = np.zeros(0, np.float32)  # input not yet through the encoder's convolutions
        self._gate_in = np.zeros(0, np.float32)  # input whose output is not yet emitted (for the gate)
        self._mid: list[np.ndarray] = []  # (C, n) encoder features at 200 Hz, not yet through the tail
        self._n_mid = 0
        self._emb: list[np.ndarray] = []  # (D, 1) embeddings at 25 Hz awaiting their frame's other half
        self._dec25: collections.deque[np.ndarray] = collections.deque()  # (D, 1) decoder steps at 25 Hz
        self._dec_mid = np.zeros((0, 0), np.float32)  # (C, n) decoder features at 200 Hz
        self._emitted = 0
        self._quiet = self.GATE_HOLD + 1  # quiet windows in a row (silent before the stream)
        self._enc_ms = 0.0  # encoder work (ms) on the input of the last call
        self._path: dict | None = None  # the critical path (ms) of the frame being finished

    def _feed(self, x: np.ndarray) -> None:
        self._enc_ms = 0.0
        self._raw = np.concatenate([self._raw, x])
        self._gate_in = np.concatenate([self._gate_in, x])

    def _produce(self, due: int) -> None:
        while self._emitted < due and self._step(encode_ahead=False):
            pass

    def prepare(self, busy=lambda: False) -> None:
        """Compute what the next call will need, then input-side work (it shortens the next frame's
        critical path); one stage call at a time, stopping as soon as ``busy()`` says a block waits
        (its own call then does just the work its answer needs)."""
        due = self._due(self._taken + self._last_call)
        while self._emitted < due and not busy() and self._step(encode_ahead=False):
            pass
        while not busy() and self._step_encoder(ahead=True):
            pass

    # --- the stages, in data-flow order -------------------------------------------------------------

    def _step(self, encode_ahead: bool) -> bool:
        """One piece of output-side work, or the encoder work it waits for; False when nothing can be
        done with the input so far."""
        if self._dec_mid.shape[1]:
            self._decode_convs()
        elif self._dec25:
            t0 = time.perf_counter()
            self._dec_mid = self.model.run("decoder.up", self._dec25.popleft())
            self._time("decoder_head", t0)
        else:
            return self._step_encoder(ahead=encode_ahead)
        return True

    def _step_encoder(self, ahead: bool) -> bool:
        m, cfg = self.model, self.model.cfg
        steps = len(self._raw) // m.mid
        if steps >= (self.ENC_STEPS if ahead else 1):
            t0 = time.perf_counter()
            take = steps * m.mid
            x, self._raw = self._raw[:take], self._raw[take:]
            self._mid.append(m.run("encoder.convs", x[None]))
            self._n_mid += steps
            self._time("encoder", t0)
            return True
        per = cfg.ratios[0]  # 200 Hz steps per 25 Hz embedding
        if self._n_mid >= per:  # one embedding per call: 16 steps in one call measured 1.4× two of 8
            t0 = time.perf_counter()
            z = np.concatenate(self._mid, axis=1)
            self._mid, self._n_mid = ([z[:, per:]] if per < z.shape[1] else []), z.shape[1] - per
            self._emb.append(m.run("encoder.tail", z[:, :per]))
            self._time("encoder", t0)
            return True
        if not ahead and len(self._emb) >= cfg.downsample:
            t0 = time.perf_counter()
            n = len(self._emb) // cfg.downsample * cfg.downsample
            z = m.run("encoder.transformer", np.concatenate(self._emb[:n], axis=1))
            self._emb = self._emb[n:]
            lat = m.down(z.T)
            self._time("transformer", t0)
            t0 = time.perf_counter()
            conv = self.pool.convert(lat, self.k)
            self._time("knn", t0)
            t0 = time.perf_counter()
            y = m.run("decoder.transformer", conv.T)
            self._dec25.extend(y[:, i : i + 1] for i in range(y.shape[1]))
            self._time("decoder_head", t0)
            return True
        return False

    def _decode_convs(self) -> None:
        t0 = time.perf_counter()
        # a frame's first output step alone (it is on the critical path), then the rest of each 25 Hz
        # step in one call (8 steps in one call measured 0.65× eight calls of one)
        n = self.FIRST_STEPS if self._path is not None else self._dec_mid.shape[1]
        y = self.model.run("decoder.convs", self._dec_mid[:, :n])[0]
        self._dec_mid = self._dec_mid[:, n:]
        self._time("first_output", t0)
        self._emit(self._gate(y))
        self._emitted += len(y)

    def _time(self, part: str, t0: float) -> None:
        """Adds the time since ``t0`` to ``part`` of the critical path: the encoder work on input that
        arrived with the last call, then (from the transformer on) the frame's path to its first output."""
        ms = (time.perf_counter() - t0) * 1000
        if part == "encoder":
            self._enc_ms += ms
        elif part == "transformer":
            self._path = {"encoder_tail": self._enc_ms + ms, "knn": 0.0, "decoder_head": 0.0}
        elif self._path is not None:
            self._path["decoder_head" if part == "first_output" else part] += ms
            if part == "first_output":
                self._path["total"] = sum(self._path.values())
                self.path_ms.append({k: round(v, 2) for k, v in self._path.items()})
                self._path = None

    def _gate(self, y: np.ndarray) -> np.ndarray:
        """Silence in → silence out, at 5 ms resolution: where the input has been below ``GATE_DB``
        (RMS, dBFS) for ``GATE_HOLD`` windows, the output is zeros — the decoder's idle hiss never
        reaches the call. Output sample i is input sample i delayed, so the gate opens exactly where
        sound starts. The models run regardless: their state, and streamed == offline, are unchanged.
        ``y`` comes in whole 5 ms steps, in order."""
        w = self.model.mid
        x, self._gate_in = self._gate_in[: len(y)], self._gate_in[len(y) :]
        rms = np.sqrt(np.mean(x.reshape(-1, w) ** 2, axis=1))
        y = y.copy()
        for i, quiet in enumerate(rms < 10 ** (self.GATE_DB / 20)):
            self._quiet = self._quiet + 1 if quiet else 0
            if self._quiet > self.GATE_HOLD:
                y[i * w : (i + 1) * w] = 0.0
        return y
