"""Target speech shipped for the built-in Mimi-VC voices (``mimi-alto``, ``mimi-tenor``).

The files are made here, not taken from anywhere: flite's CMU voices (BSD-style licence) read the
project's own pool sentences (MIT), joined by short pauses, Ogg/Opus at 32 kbit/s.
``python -m ravasd.evaluation.target_speech`` rebuilds them (needs flite; a test checks a rebuild sounds
the same). ``models fetch mimi`` turns them into pools.
"""

from __future__ import annotations

import hashlib
import io
from importlib import resources

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
        frame = av.AudioFrame.from_ndarray(
            (np.clip(x, -1, 1) * 32767).astype(np.int16)[None], format="s16", layout="mono"
        )
        frame.sample_rate = rate
        for f in res.resample(frame) + res.resample(None):
            for pkt in st.encode(f):
                box.mux(pkt)
        for pkt in st.encode(None):
            box.mux(pkt)
    return buf.getvalue()
