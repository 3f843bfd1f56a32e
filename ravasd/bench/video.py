"""``ravasd bench video``: capture → track → filter → render → sink on a generated face clip.

The clip is rendered from a bundled avatar (MediaPipe tracks it like a face), so the benchmark
needs no camera and no downloaded media. It runs paced at the target frame rate on this machine
and prints per-stage p50/p95 and how much CPU the process used (process CPU time / wall time).
"""

from __future__ import annotations

import json
import math
import os
import time

import cv2
import numpy as np

from ..config import Config
from ..engine.frames import AnonFrame
from ..video.avatar.converter import renderer_from_config
from ..video.avatar.library import find
from ..video.avatar.model import load_avatar
from ..video.avatar.renderer import AvatarRenderer
from ..video.filters import PoseFilter
from ..video.sinks import NullVideoSink
from ..video.tracking import ARKIT_NAMES, open_tracker


def _face_clip(n: int, width: int, height: int) -> list[np.ndarray]:
    r = AvatarRenderer(load_avatar(find("mira")), width, height, background=(0.35, 0.4, 0.38))
    frames = []
    try:
        for i in range(n):
            w = np.zeros(52, np.float32)
            w[ARKIT_NAMES.index("jawOpen")] = 0.5 + 0.5 * math.sin(i * 0.4)
            w[ARKIT_NAMES.index("mouthSmileLeft")] = w[ARKIT_NAMES.index("mouthSmileRight")] = 0.3
            frames.append(r.render(w, yaw=15 * math.sin(i * 0.1), pitch=5 * math.sin(i * 0.07)))
    finally:
        r.release()
    return frames


def bench_video(cfg: Config, width: int, height: int, seconds: float = 10.0, fps: int | None = None) -> dict:
    fps = fps or cfg.video.fps
    clip = _face_clip(60, 640, 480)  # a webcam-sized input
    tracker = open_tracker(cfg)
    renderer = renderer_from_config(cfg, width, height)
    pf = PoseFilter()
    sink = NullVideoSink()
    stages: dict[str, list[float]] = {k: [] for k in ("capture", "track", "filter", "render", "sink", "total")}
    tracked = 0
    last = (np.zeros(52, np.float32), 0.0, 0.0, 0.0)
    period = 1.0 / fps
    t_start, cpu_start = time.perf_counter(), time.process_time()
    n = 0
    try:
        while time.perf_counter() - t_start < seconds:
            due = t_start + n * period
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            t0 = time.perf_counter()
            img = clip[n % len(clip)]
            t1 = time.perf_counter()
            pose = tracker.track(img, n * period)
            t2 = time.perf_counter()
            if pose is not None:
                tracked += 1
                last = pf.apply(pose)
            t3 = time.perf_counter()
            out = renderer.render(*last)
            t4 = time.perf_counter()
            sink.write(AnonFrame(out, n * period))
            cv2.cvtColor(out, cv2.COLOR_RGB2YUV_I420)  # the conversion the v4l2loopback sink does per frame
            t5 = time.perf_counter()
            for k, (a, b) in zip(stages, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t0, t5))):
                stages[k].append((b - a) * 1000)
            n += 1
    finally:
        wall = time.perf_counter() - t_start
        cpu = time.process_time() - cpu_start
        tracker.close()
        renderer.release()
    res = {
        "width": width,
        "height": height,
        "fps_target": fps,
        "fps_achieved": round(n / wall, 1),
        "cpu_cores": round(cpu / wall, 2),
        "frames": n,
        "face_tracked": round(tracked / max(n, 1), 2),
        "antialias_samples": renderer.samples,
        "render_scale": renderer.scale,
        "cpu_count": os.cpu_count(),
        "avatar": renderer.model.name,
        "triangles": renderer.triangles,
        "draw_calls": renderer.draw_calls,
        "rasteriser_threads": (int(os.environ.get("LP_NUM_THREADS", "0")) or None) if renderer.software else None,
    }
    for k, v in stages.items():
        res[f"{k}_p50_ms"] = round(float(np.percentile(v, 50)), 2)
        res[f"{k}_p95_ms"] = round(float(np.percentile(v, 95)), 2)
    return res


def format_table(res: dict) -> str:
    head = (
        f"video bench {res['width']}×{res['height']} @ {res['fps_target']} fps, avatar {res['avatar']} "
        f"({res['triangles']} triangles, {res['draw_calls']} draws): achieved {res['fps_achieved']} fps, "
        f"cpu_cores {res['cpu_cores']}, face tracked in {res['face_tracked'] * 100:.0f} % of frames, "
        f"MSAA {res['antialias_samples']}×, render scale {res['render_scale']}"
        + (f", {res['rasteriser_threads']} llvmpipe threads" if res.get("rasteriser_threads") else "")
    )
    rows = ["stage     p50 ms   p95 ms"]
    for k in ("capture", "track", "filter", "render", "sink", "total"):
        rows.append(f"{k:<8} {res[f'{k}_p50_ms']:>7.2f}  {res[f'{k}_p95_ms']:>7.2f}")
    return head + "\n" + "\n".join(rows)


def to_json(res: dict) -> str:
    return json.dumps(res, indent=2)
