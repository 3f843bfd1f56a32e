"""The avatar video converter: track → filter → render. No camera pixel reaches the output: the
frame is used only by the tracker; the output is rendered from the avatar model alone.

When the face is lost the last pose is held for ``hold_s``, then eases to a neutral idle pose
(breathing, blinks every few seconds), while the mouth follows the converted voice: its level opens
the jaw, its spectral shape picks simple visemes (round "oh/oo" → funnel, bright "ee" → stretch).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ...engine.frames import AnonFrame, RawFrame
from ...errors import ConfigError, ModelError
from ..detection_log import DetectionLogWriter
from ..filters import PoseFilter
from ..tracking import ARKIT_NAMES, open_tracker
from .library import find
from .model import load_avatar
from .renderer import AvatarRenderer

log = logging.getLogger(__name__)
JAW = ARKIT_NAMES.index("jawOpen")
FUNNEL = ARKIT_NAMES.index("mouthFunnel")
STRETCH = (ARKIT_NAMES.index("mouthStretchLeft"), ARKIT_NAMES.index("mouthStretchRight"))
BLINK = (ARKIT_NAMES.index("eyeBlinkLeft"), ARKIT_NAMES.index("eyeBlinkRight"))


class AvatarConverter:
    def __init__(self, tracker, renderer, level: Callable[[], tuple] | None = None, hold_s: float = 0.5,
                 ease_s: float = 0.6, log_path: str | None = None) -> None:
        self.tracker, self.renderer, self.level = tracker, renderer, level
        self.gain, self.gamma = renderer.model.response()
        self.filter = PoseFilter()
        self.hold_s, self.ease_s = hold_s, ease_s
        self._last = (np.zeros(len(ARKIT_NAMES), np.float32), 0.0, 0.0, 0.0)
        self._last_t = -1e9
        self.face_visible = False
        self._log = None
        if log_path:
            self._log = DetectionLogWriter(log_path)

    def idle_pose(self, t: float, age: float) -> tuple[np.ndarray, float, float, float]:
        """Ease from the last tracked pose to neutral; blink every ~4 s; mouth from the voice.

        ``level()`` gives (rms, roundness, spread) — see ``pipelines.voice_shape`` — or a bare rms."""
        e = math.exp(-max(0.0, age - self.hold_s) / self.ease_s)
        w, yaw, pitch, roll = self._last
        w = w * e
        phase = t % 4.0
        if phase < 0.15:  # a natural blink: 150 ms
            blink = math.sin(phase / 0.15 * math.pi)
            for i in BLINK:
                w[i] = max(w[i], blink)
        if self.level is not None:
            shape = self.level()
            rms, rnd, spread = (shape, 0.0, 0.0) if isinstance(shape, (int, float)) else tuple(shape)[:3]
            opening = min(1.0, float(rms) * 4.0)
            w[JAW] = max(w[JAW], opening)
            w[FUNNEL] = max(w[FUNNEL], float(np.clip((rnd - 0.55) * 2.5, 0, 1)) * opening)
            for i in STRETCH:
                w[i] = max(w[i], float(np.clip((spread - 0.15) * 3.0, 0, 1)) * opening)
        return w, yaw * e + 2.0 * math.sin(t * 0.5) * (1 - e), pitch * e, roll * e

    def process(self, frame: RawFrame) -> AnonFrame:
        t = frame.ts
        pose = self.tracker.track(frame.image, t) if self.tracker is not None else None
        self.face_visible = pose is not None
        if pose is not None:
            w, yaw, pitch, roll = self.filter.apply(pose)
            self._last = (np.minimum(1.0, self.gain * np.power(w, self.gamma)).astype(np.float32), yaw, pitch, roll)
            self._last_t = t
            w, yaw, pitch, roll = self._last
            if self._log is not None:
                self._log.write(pose)
        elif t - self._last_t <= self.hold_s:
            w, yaw, pitch, roll = self._last
        else:
            w, yaw, pitch, roll = self.idle_pose(t, t - self._last_t)
        img = self.renderer.render(w, yaw, pitch, roll, breathe=math.sin(t * 2 * math.pi * 0.25))
        return AnonFrame(img, frame.ts)

    def calibrate(self) -> None:
        self.filter.start_calibration()

    def reset(self) -> None:
        self.filter.reset()

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.tracker is not None:
            self.tracker.close()
        self.renderer.release()


def make(cfg, width: int, height: int, level: Callable[[], tuple] | None = None) -> AvatarConverter:
    renderer = renderer_from_config(cfg, width, height)
    try:
        tracker = open_tracker(cfg)
    except ModelError as err:
        # no face model (offline, downloads off): the avatar still appears, idles and talks with the
        # voice — better than a grey card; `ravasd doctor` names the missing file
        log.warning("face tracking is off: %s", err)
        tracker = None
    except Exception as err:  # a model file MediaPipe cannot load (corrupt, another format): the same
        log.warning("face tracking is off: the face model could not be loaded (%s: %s); "
                    "`ravasd doctor` checks it", type(err).__name__, str(err)[:200])
        tracker = None
    return AvatarConverter(tracker, renderer, level=level, log_path=cfg.video.detection_log)


def renderer_from_config(cfg, width: int, height: int, avatar: str | None = None):
    """The renderer the daemon, ``render`` and ``bench`` share: ``avatar`` (default video.avatar) with
    the configured background colour/picture and render scale."""

    return AvatarRenderer(load_avatar(find(avatar or cfg.video.avatar)), width, height,
                          background=_rgb(cfg.video.background), scale=cfg.video.render_scale,
                          background_image=load_background(cfg))


def _rgb(hexcolor: str) -> tuple[float, float, float]:
    h = hexcolor.lstrip("#")
    return tuple(int(h[i:i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def load_background(cfg) -> np.ndarray | None:
    """``video.background_image`` as RGB, or None; a missing/unreadable file is a ConfigError."""
    if not cfg.video.background_image:
        return None



    path = Path(cfg.video.background_image).expanduser()
    img = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
    if img is None:
        raise ConfigError(f"video.background_image: cannot read {path} as a picture.",
                          "give a PNG or JPEG file, or set it to null.")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
