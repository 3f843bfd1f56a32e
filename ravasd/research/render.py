"""``ravasd render``: an avatar's rest pose to PNG, or a detection log replayed to MP4/PNG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..config import Config
from ..engine.frames import AnonFrame
from ..errors import MediaError
from ..media.formats import PICTURE_OUT, VIDEO_OUT
from ..media.writer import MediaWriter
from ..video.avatar.converter import renderer_from_config
from ..video.detection_log import read_log
from ..video.filters import PoseFilter


def render(
    cfg: Config,
    output: Path,
    avatar: str | None = None,
    log: Path | None = None,
    width: int | None = None,
    height: int | None = None,
) -> Path:

    w, h = width or cfg.video.width, height or cfg.video.height
    ext = output.suffix.lower()
    if ext not in (*PICTURE_OUT, *VIDEO_OUT):
        raise MediaError(f"Output {output}: use .png/.jpg for a picture or .mp4/.mkv/.mov for a video.")
    r = renderer_from_config(cfg, w, h, avatar)
    try:
        poses = list(read_log(log)) if log else []
        if log and not poses:
            raise MediaError(f"Detection log {log} has no entries.")
        if ext in (".png", ".jpg"):
            if poses:
                pf = PoseFilter()
                for p in poses:
                    img = r.render(*pf.apply(p))
            else:
                img = r.render(np.zeros(52, np.float32))
            tmp = output.with_name(f".{output.stem}.partial{output.suffix}")
            if not cv2.imwrite(str(tmp), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
                raise MediaError(f"Output {output} cannot be written.")
            tmp.replace(output)
            return output

        if not poses:
            raise MediaError("rendering a video needs --blendshapes LOG (a detection log to replay).")
        writer = MediaWriter(output, width=w, height=h, fps=cfg.video.fps)
        try:
            pf = PoseFilter()
            t0 = poses[0].ts
            for p in poses:
                writer.write_frame(AnonFrame(r.render(*pf.apply(p)), p.ts - t0))
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        return output
    finally:
        r.release()
