"""Generate real media files for tests (PyAV encoders; nothing downloaded)."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ravasd.evaluation.leaks import Marker


def textured_frame(i: int, width: int, height: int, seed: int = 3) -> np.ndarray:
    """A high-detail moving image: seeded noise texture scrolled by ``i`` plus a bright square."""
    rng = np.random.default_rng(seed)
    tex = rng.integers(0, 255, (height, width * 2, 3), dtype=np.uint8)
    img = np.ascontiguousarray(tex[:, i % width : i % width + width])
    x = (i * 7) % max(1, width - 40)
    img[10:50, x : x + 40] = 250
    return img


def tone(seconds: float, rate: int, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    return (0.4 * env * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def make_video(
    path: Path,
    *,
    seconds: float = 2.0,
    width: int = 320,
    height: int = 240,
    fps: float = 25,
    vcodec: str = "libx264",
    acodec: str | None = "aac",
    audio_rate: int = 48000,
    pix_fmt: str = "yuv420p",
    channels: int = 2,
) -> Path:
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
            for _k, s in enumerate(range(0, data.shape[1], step)):
                chunk = np.ascontiguousarray(data[:, s : s + step])
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


def make_audio(
    path: Path, *, seconds: float = 1.5, rate: int = 16000, signal: np.ndarray | None = None, codec: str | None = None
) -> Path:
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


#: The leak marker the marked test speech carries (``ravasd.evaluation.leaks``).
MARKER = Marker()


def marked_speech(tmp: Path) -> Path:
    """~9 s of espeak-ng speech at 48 kHz with the marker under it (−18 dB), as a WAV file."""
    parts = []
    for k, text in enumerate(
        (
            "Please call Stella and ask her to bring these things with her from the store.",
            "Six spoons of fresh snow peas, five thick slabs of blue cheese, and maybe a snack.",
        )
    ):
        raw = tmp / f"s{k}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
        with av.open(str(raw)) as c:
            res = av.AudioResampler(format="flt", layout="mono", rate=48000)
            parts.append(
                np.concatenate([o.to_ndarray().reshape(-1) for f in c.decode(audio=0) for o in res.resample(f)])
            )
    x = np.concatenate(parts)
    # a whole number of markers: played in a loop, the marker runs on unbroken across the restarts
    period = int(round(MARKER.seconds * 48000))
    x = np.concatenate([0.5 * x / np.abs(x).max(), np.zeros(-len(x) % period, np.float32)])
    return make_audio(tmp / "marked.wav", signal=MARKER.mix(x, 48000), rate=48000)
