"""Generate real media files for tests (PyAV encoders; nothing downloaded)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def textured_frame(i: int, width: int, height: int, seed: int = 3) -> np.ndarray:
    """A high-detail moving image: seeded noise texture scrolled by ``i`` plus a bright square."""
    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 255, (height, width * 2, 3), dtype=np.uint8)
    img = np.ascontiguousarray(tex[:, i % width:i % width + width])
    x = (i * 7) % max(1, width - 40)
    img[10:50, x:x + 40] = 250
    return img


def tone(seconds: float, rate: int, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (0.4 * env * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def make_video(path: Path, *, seconds: float = 2.0, width: int = 320, height: int = 240,
               fps: float = 25, vcodec: str = "libx264", acodec: str | None = "aac",
               audio_rate: int = 48000, pix_fmt: str = "yuv420p", channels: int = 2) -> Path:
    """Write a video (optionally with audio) in the container given by ``path``'s extension."""
    with av.open(str(path), "w") as c:
        vs = c.add_stream(vcodec, rate=Fraction(fps).limit_denominator(1001))
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        a_s = None
        if acodec:
            a_s = c.add_stream(acodec, rate=audio_rate)
            a_s.layout = "stereo" if channels == 2 else "mono"
        n = int(round(seconds * fps))
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(textured_frame(i, width, height), format="rgb24")
            c.mux(vs.encode(frame))
        c.mux(vs.encode(None))
        if a_s is not None:
            mono = tone(seconds, audio_rate)
            data = np.stack([mono] * channels) if channels == 2 else mono[None]
            fmt = a_s.codec_context.format.name if a_s.codec_context.format else "fltp"
            step = 1024
            for k, s in enumerate(range(0, data.shape[1], step)):
                chunk = np.ascontiguousarray(data[:, s:s + step])
                if fmt in ("s16", "s16p"):
                    chunk = (chunk * 32767).astype(np.int16)
                    if fmt == "s16":
                        chunk = np.ascontiguousarray(chunk.T.reshape(1, -1))
                elif fmt == "flt":
                    chunk = np.ascontiguousarray(chunk.T.reshape(1, -1))
                af = av.AudioFrame.from_ndarray(chunk, format=fmt, layout=a_s.layout.name)
                af.sample_rate = audio_rate
                af.pts = s
                c.mux(a_s.encode(af))
            c.mux(a_s.encode(None))
    return path


def make_audio(path: Path, *, seconds: float = 1.5, rate: int = 16000, signal: np.ndarray | None = None,
               codec: str | None = None) -> Path:
    """Write mono audio (.wav pcm_s16le, .flac, .mp3) with ``signal`` or a test tone."""
    data = tone(seconds, rate) if signal is None else signal.astype(np.float32)
    codec = codec or {".wav": "pcm_s16le", ".flac": "flac", ".mp3": "libmp3lame"}[path.suffix]
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.layout = "mono"
        fmt = s.codec_context.format.name
        pcm = (data * 32767).astype(np.int16) if fmt.startswith("s16") else data
        if fmt.startswith("s32"):
            pcm = (data * 2147483647).astype(np.int32)
        af = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format=fmt, layout="mono")
        af.sample_rate = rate
        af.pts = 0
        c.mux(s.encode(af))
        c.mux(s.encode(None))
    return path
