"""Plain PCM WAV read/write (stdlib ``wave``) for short clips: corpora, tests, evaluation."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """16/32-bit PCM WAV → (float32 mono in [-1, 1], rate). Channels are averaged."""
    with wave.open(str(path), "rb") as w:
        rate, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    dtype = {1: np.uint8, 2: np.int16, 4: np.int32}[width]
    x = np.frombuffer(raw, dtype).astype(np.float32)
    x = (x - 128) / 128 if width == 1 else x / float(np.iinfo(dtype).max + 1)
    return x.reshape(-1, ch).mean(axis=1), rate


def write_wav(path: str | Path, x: np.ndarray, rate: int) -> None:
    """float mono → 16-bit PCM WAV (clipped)."""
    pcm = (np.clip(np.asarray(x, np.float64), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
