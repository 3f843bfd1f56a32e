"""`ravasd eval report OUTDIR` on a real batch: voice measures with intervals, per speaker, video
leak checks that can fail, durations; Markdown, HTML and plots."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_MODELS
from mediagen import make_video

pytest.importorskip("resemblyzer")


def test_report_on_a_batch_measures_voice_and_video_and_flags_a_leak(tmp_path):
    from ravasd.evaluation.corpus import eval_corpus, write_corpus

    src = tmp_path / "in"
    write_corpus(src / "speech", eval_corpus(3, 3))
    (src / "clips").mkdir(parents=True)
    make_video(src / "clips" / "clip-a.mp4", seconds=1.0, width=160, height=120, fps=15)
    make_video(src / "clips" / "clip-b.mp4", seconds=1.0, width=160, height=120, fps=15)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAVAS_")}
    env.update(RAVAS_HOME=str(tmp_path / "home"), RAVAS_MODELS_DIR=str(SHARED_MODELS), PULSE_SERVER="unix:/nonexistent")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ravasd",
            "anonymize",
            str(src),
            "-o",
            str(out),
            "--jobs",
            "2",
            "--no-progress",
            "--eval",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    md = (out / "report.md").read_text()
    assert "3 speakers, 9 files" in md and "EER, lazy-informed attacker" in md and "95 % interval" in md
    row = next(line for line in md.splitlines() if line.startswith("| EER on the originals"))
    assert float(row.split("|")[2].strip(" %")) <= 10  # the instrument tells these speakers apart
    assert "**no output resembles its input**" in md
    for spk in ("ann", "ben", "cat"):
        assert f"| {spk} | 3 |" in md
    html = (out / "report.html").read_text()
    assert "<table>" in html and "data:image/png;base64," in html
    assert (out / "report-voice.png").stat().st_size > 5000 and (out / "report-video.png").exists()

    # the check can fail: a batch whose 'output' is its input is flagged
    man = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    clip = next(m for m in man if m["rel"].endswith("clip-a"))
    shutil.copyfile(clip["input"], out / clip["output"])
    # …and one whose output is its input blurred, cropped, zoomed and darkened
    other = next(m for m in man if m["rel"].endswith("clip-b"))
    _disguised_copy(Path(other["input"]), out / other["output"])
    r = subprocess.run(
        [sys.executable, "-m", "ravasd", "eval", "report", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    md = (out / "report.md").read_text()
    assert "**2 above the limit**" in md and md.count("⚠") >= 2, md


def _disguised_copy(src: Path, dst: Path) -> None:
    import av
    import cv2

    with av.open(str(src)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    h, w = frames[0].shape[:2]
    with av.open(str(dst), "w") as c:
        s = c.add_stream("libx264", rate=15)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for f in frames:
            crop = cv2.GaussianBlur(f, (0, 0), 1.5)[h // 8 : h - h // 8, w // 8 : w - w // 8]
            img = (cv2.resize(crop, (w, h)) * 0.7).astype(np.uint8)
            c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(s.encode(None))
