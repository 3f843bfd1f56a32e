"""The latest published frame, shared with the main process (``ctl snapshot``, the settings preview).

The video worker's :class:`FrameTap` copies what its sink got — anonymized frames and placeholder
cards only — into a :class:`SharedFrame` at most ``max_fps`` times a second; the main process reads
it with :meth:`SharedFrame.read`. A sequence counter (odd while a copy is being written) lets the
reader retry instead of locking the publish thread. No raw item can reach it: the tap sits behind
the sink's type check.
"""

from __future__ import annotations

import os
import time
import wave
from typing import Any

import numpy as np

from .frames import AnonFrame, require_anon

MAX_W, MAX_H = 1920, 1080  # the largest output the config allows (video.width/height ranges)


class SharedFrame:
    """One RGB frame of up to ``MAX_W`` × ``MAX_H`` in shared memory. Made by the supervisor
    (main process) and passed to the video worker in its routes; pickles with the spawn context."""

    def __init__(self, ctx: Any) -> None:
        self.pixels = ctx.RawArray("B", MAX_W * MAX_H * 3)
        # [sequence, width, height, placeholder, wall-clock time of the copy]
        self.meta = ctx.RawArray("d", 5)

    def write(self, image: np.ndarray, placeholder: bool) -> None:
        """Copy ``image`` ((H, W, 3) uint8, H ≤ MAX_H, W ≤ MAX_W). One writer thread only."""
        h, w = image.shape[:2]
        seq = int(self.meta[0])
        self.meta[0] = seq + 1  # odd: a copy is in progress
        np.frombuffer(self.pixels, np.uint8, h * w * 3)[:] = image.reshape(-1)
        self.meta[1], self.meta[2], self.meta[3], self.meta[4] = w, h, float(placeholder), time.time()
        self.meta[0] = seq + 2

    def clear(self) -> None:
        seq = int(self.meta[0])
        self.meta[0] = seq + 1
        self.meta[1] = self.meta[2] = 0
        self.meta[0] = seq + 2

    def read(self, tries: int = 20) -> tuple[np.ndarray, bool, float] | None:
        """(image copy, placeholder, wall time) of the latest frame, or None when there is none."""
        for _ in range(tries):
            seq = int(self.meta[0])
            if seq % 2:
                time.sleep(0.002)
                continue
            w, h, ph, t = int(self.meta[1]), int(self.meta[2]), bool(self.meta[3]), float(self.meta[4])
            if not w or not h:
                return None
            img = np.frombuffer(self.pixels, np.uint8, h * w * 3).copy().reshape(h, w, 3)
            if int(self.meta[0]) == seq:
                return img, ph, t
        return None


class FrameTap:
    """A :class:`~ravasd.engine.runner.Tap` for the video runner: every ``1/max_fps`` s, the frame
    the sink just got goes into ``shared`` (publish thread)."""

    def __init__(self, shared: SharedFrame, max_fps: float = 10.0) -> None:
        self.shared = shared
        self.period = 1.0 / max_fps
        self._last = -1e9

    def write(self, frame: AnonFrame) -> None:
        require_anon(frame, AnonFrame)
        now = time.monotonic()
        if now - self._last < self.period:
            return
        self._last = now
        img = frame.image
        if img.shape[0] <= MAX_H and img.shape[1] <= MAX_W:
            self.shared.write(np.ascontiguousarray(img), frame.placeholder)

    def close(self) -> None:
        self.shared.clear()


class AudioSample:
    """Records ``seconds`` of what the audio sink got (converted voice or silence, never raw) into a
    16-bit mono WAV at ``path`` — the settings window's "Test my voice". Written once, atomically,
    owner-only (0600); :meth:`write` returns True when the file is complete (publish thread)."""

    def __init__(self, path: str, seconds: float) -> None:
        self.path = path
        self.seconds = seconds
        self._parts: list[np.ndarray] = []
        self._n = 0
        self._rate = 0

    def write(self, block: Any) -> bool:
        from .frames import AnonAudio

        require_anon(block, AnonAudio)
        self._rate = block.rate
        self._parts.append(np.asarray(block.samples, np.float32))
        self._n += len(block.samples)
        if self._n < self.seconds * block.rate:
            return False
        self._save()
        return True

    def _save(self) -> None:

        pcm = (np.clip(np.concatenate(self._parts), -1, 1) * 32767).astype("<i2")
        tmp = f"{self.path}.part"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh, wave.open(fh, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self._rate)
            w.writeframes(pcm.tobytes())
        os.replace(tmp, self.path)
