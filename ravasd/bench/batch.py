"""``ravasd bench batch``: throughput of ``ravasd anonymize`` on a generated corpus, per job count.

The corpus: ``files`` clips of ``seconds`` each, a drawn face that turns, nods and talks (the demo
source) at ``width``×``height``, 25 fps, with a speech-like voice (48 kHz) — the default voice and
avatar do all their work on it. Each job count runs the same corpus into a fresh folder; the
figure is media-hours anonymized per wall-hour, and per job (≈ per core: each job is
single-threaded).
"""

from __future__ import annotations

import json
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from ..audio.sources import synth_speech
from ..config import Config
from ..research.batch import run_batch
from ..video.sources import DemoVideoSource

FPS, RATE = 25, 48000


def make_corpus(folder: Path, files: int, seconds: float, width: int, height: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n in range(files):
        path = folder / f"speaker{n % 4}_clip{n:02d}.mp4"
        speech = synth_speech(RATE, seconds, seed=n)
        with av.open(str(path), "w") as c:
            vs = c.add_stream("libx264", rate=FPS)
            vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
            aus = c.add_stream("aac", rate=RATE)
            aus.layout = "mono"
            for i in range(int(seconds * FPS)):
                img = DemoVideoSource.render(i + 37 * n, width, height, FPS)
                c.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
            for i in range(0, len(speech), 1024):
                af = av.AudioFrame.from_ndarray(
                    speech[None, i : i + 1024].astype(np.float32), format="flt", layout="mono"
                )
                af.sample_rate, af.pts, af.time_base = RATE, i, Fraction(1, RATE)
                c.mux(aus.encode(af))
            c.mux(vs.encode(None))
            c.mux(aus.encode(None))
        out.append(path)
    return out


def bench_batch(
    cfg: Config, jobs: list[int], files: int = 8, seconds: float = 10.0, width: int = 640, height: int = 480
) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="ravas-bench-batch-") as tmp:
        corpus = make_corpus(Path(tmp) / "corpus", files, seconds, width, height)
        for n in jobs:
            t0 = time.monotonic()
            res = run_batch(
                [str(p) for p in corpus], Path(tmp) / f"out-{n}", cfg, jobs=n, progress=False, log=lambda line: None
            )
            wall = time.monotonic() - t0
            per_hour = res.media_s / wall
            rows.append(
                {
                    "jobs": n,
                    "files": files,
                    "media_s": round(res.media_s, 1),
                    "wall_s": round(wall, 1),
                    "media_h_per_wall_h": round(per_hour, 3),
                    "media_h_per_wall_h_per_job": round(per_hour / n, 3),
                    "failed": len(res.failed),
                    "size": f"{width}x{height}",
                    "voice": cfg.audio.voice,
                    "avatar": cfg.video.avatar,
                }
            )
    return rows


def to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps(rows, indent=2)
