"""Target speech shipped for the built-in Mimi-VC voices (``mimi-alto``, ``mimi-tenor``).

The files are made here, not taken from anywhere: flite's CMU voices (BSD-style licence) read the
project's own pool sentences (MIT), joined by short pauses, Ogg/Opus at 32 kbit/s.
``python -m ravasd.audio.neural.speech`` rebuilds them (needs flite; deterministic for one libopus
version, and a test checks a rebuild sounds the same). ``models fetch mimi`` turns them into pools.
"""
from __future__ import annotations

import hashlib
import io
import sys
from importlib import resources
from pathlib import Path

import numpy as np

#: name → (flite voice, description)
SPEAKERS = {
    "alto": ("slt", "an alto voice (flite's slt)"),
    "tenor": ("awb", "a tenor voice (flite's awb)"),
}
RATE = 24000
PAUSE_S = 0.3
BITRATE = 32000


def file_name(name: str) -> str:
    return f"{name}.opus"


def _bytes(name: str) -> bytes:
    return resources.files("ravasd.audio.neural").joinpath("speech", file_name(name)).read_bytes()


def sha256(name: str) -> str:
    return hashlib.sha256(_bytes(name)).hexdigest()


def decode(data: bytes, rate: int = RATE) -> np.ndarray:
    """Ogg/Opus bytes → float32 mono at ``rate``."""
    import av

    out = []
    with av.open(io.BytesIO(data)) as box:
        res = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in box.decode(audio=0):
            for f in res.resample(frame):
                out.append(f.to_ndarray().reshape(-1))
        for f in res.resample(None):
            out.append(f.to_ndarray().reshape(-1))
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def load(name: str, rate: int = RATE) -> np.ndarray:
    return decode(_bytes(name), rate)


def encode(x: np.ndarray, rate: int) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="ogg") as box:
        st = box.add_stream("libopus", rate=48000, layout="mono")
        st.bit_rate = BITRATE
        res = av.AudioResampler(format="s16", layout="mono", rate=48000)
        frame = av.AudioFrame.from_ndarray((np.clip(x, -1, 1) * 32767).astype(np.int16)[None], format="s16",
                                           layout="mono")
        frame.sample_rate = rate
        for f in res.resample(frame) + res.resample(None):
            for pkt in st.encode(f):
                box.mux(pkt)
        for pkt in st.encode(None):
            box.mux(pkt)
    return buf.getvalue()


def synthesize(name: str) -> tuple[np.ndarray, int]:
    """The speech of ``name`` before encoding (flite), and its rate."""
    from ...evaluation.corpus import POOL_SENTENCES, RATE as SRATE, synthesize as say

    voice = SPEAKERS[name][0]
    pause = np.zeros(int(PAUSE_S * SRATE), np.float32)
    parts = []
    for text in POOL_SENTENCES:
        parts += [say(text, "flite", voice), pause]
    x = np.concatenate(parts)
    return (0.5 * x / max(1e-6, float(np.max(np.abs(x))))).astype(np.float32), SRATE


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(SPEAKERS)
    folder = Path(__file__).parent / "speech"
    folder.mkdir(exist_ok=True)
    for name in names:
        x, rate = synthesize(name)
        (folder / file_name(name)).write_bytes(encode(x, rate))
        print(f"{name}: {len(x) / rate:.1f} s, {(folder / file_name(name)).stat().st_size / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
