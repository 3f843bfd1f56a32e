"""Video converters (anonymizers) and their registry.

A converter receives :class:`RawFrame` and returns an :class:`AnonFrame` of the output size that
it draws from scratch: no input pixel is ever copied. Factories take ``(cfg, width, height)``.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..config import Config
from ..engine.frames import AnonFrame, RawFrame
from ..errors import ConfigError
from .avatar.converter import make
from .facemask import FaceMaskConverter
from .tracking import open_tracker


class CardConverter:
    """An abstract figure on a neutral card whose head follows where the picture is brightest.

    The only information taken from the input is the luminance centroid of a 32×24 thumbnail
    (two numbers, smoothed): enough to show that the stream is live, nothing that identifies.
    It is the engine's reference converter until the avatar converter is selected.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self._pos = np.array([0.5, 0.5])
        y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
        bg = np.array([120, 170, 200], np.float32) * (1 - y) + np.array([70, 110, 150], np.float32) * y
        self._bg = np.broadcast_to(bg, (height, width, 3)).astype(np.uint8)

    def process(self, frame: RawFrame) -> AnonFrame:
        small = cv2.resize(frame.image, (32, 24), interpolation=cv2.INTER_AREA).mean(axis=2)
        w = small - small.min() + 1e-3
        ys, xs = np.mgrid[0:24, 0:32]
        target = np.array([(w * xs).sum() / w.sum() / 31, (w * ys).sum() / w.sum() / 23])
        self._pos += 0.2 * (target - self._pos)
        img = self._bg.copy()
        s = min(self.width, self.height)
        cx = int(self.width * (0.35 + 0.3 * self._pos[0]))
        cy = int(self.height * (0.38 + 0.16 * self._pos[1]))
        cv2.ellipse(
            img,
            (self.width // 2, self.height + int(s * 0.05)),
            (int(s * 0.36), int(s * 0.34)),
            0,
            180,
            360,
            (40, 70, 110),
            -1,
            cv2.LINE_AA,
        )
        cv2.circle(img, (cx, cy), int(s * 0.17), (245, 205, 160), -1, cv2.LINE_AA)
        blink = (frame.index % 90) < 4
        for dx in (-1, 1):
            eye = (cx + dx * int(s * 0.06), cy - int(s * 0.03))
            if blink:
                cv2.line(img, (eye[0] - 8, eye[1]), (eye[0] + 8, eye[1]), (40, 40, 40), 3, cv2.LINE_AA)
            else:
                cv2.circle(img, eye, max(2, int(s * 0.015)), (40, 40, 40), -1, cv2.LINE_AA)
        smile = int(s * 0.05)
        cv2.ellipse(img, (cx, cy + int(s * 0.05)), (smile, smile // 2), 0, 10, 170, (60, 40, 40), 3, cv2.LINE_AA)
        return AnonFrame(img, frame.ts)

    def reset(self) -> None:
        self._pos[:] = 0.5

    def close(self) -> None:
        pass


VideoFactory = Callable[[Config, int, int], object]


def _facemask(cfg: Config, w: int, h: int) -> object:
    return FaceMaskConverter(open_tracker(cfg), w, h, log_path=cfg.video.detection_log)


def _avatar(cfg: Config, w: int, h: int, level=None, live: bool = False) -> object:
    return make(cfg, w, h, level, live=live)


VIDEO_CONVERTERS: dict[str, tuple[VideoFactory, str]] = {
    "avatar": (_avatar, "a 3D avatar (video.avatar) wearing your expressions and head movements"),
    "card": (
        lambda cfg, w, h: CardConverter(w, h),
        "abstract figure on a neutral card; follows overall brightness, no face data",
    ),
    "facemask": (_facemask, "the tracked face mesh (MediaPipe, 478 points) drawn on a blank background"),
}


def make_video_converter(cfg: Config, width: int, height: int, level=None, live: bool = False) -> object:
    """Build ``cfg.video.converter``; unknown names raise :class:`ConfigError` listing the choices.

    ``level``: optional callable giving the converted voice's level 0..1 (the avatar's mouth uses it
    when the face is not seen). ``live``: frames must keep a frame rate (the daemon), so the avatar
    may lower its render scale when the CPU is busy; offline runs render every frame as configured."""
    name = cfg.video.converter
    if name not in VIDEO_CONVERTERS:
        raise ConfigError(
            f"video.converter: unknown converter {name!r}.", f"choose one of: {', '.join(sorted(VIDEO_CONVERTERS))}."
        )
    if name == "avatar":
        return _avatar(cfg, width, height, level, live)
    return VIDEO_CONVERTERS[name][0](cfg, width, height)


def video_choices() -> list[str]:
    """What the tray and the settings window offer for the camera picture: every avatar the library
    has (each is the avatar converter wearing it), then the other converters."""
    from .avatar.library import available

    return [*available(), *(n for n in VIDEO_CONVERTERS if n != "avatar")]
