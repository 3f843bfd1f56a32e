"""Video sources. Each returns :class:`RawFrame` (RGB uint8) with capture timestamps on the
monotonic clock; ``read()`` blocks until the next frame."""

from __future__ import annotations

import math
import threading
from pathlib import Path

import cv2
import numpy as np

from ..engine.frames import RawFrame, now
from ..engine.pacing import Pacer
from ..errors import DeviceError
from ..media.reader import iter_media, probe


class CameraSource:
    """A camera through OpenCV: ``camera`` is an index (0, 1, …) or a device path/URL."""

    def __init__(self, camera: int | str, width: int, height: int, fps: float) -> None:
        self.cap = cv2.VideoCapture(camera)
        if not self.cap.isOpened():
            self.cap.release()
            raise DeviceError(
                f"Camera {camera!r} cannot be opened.",
                "check that it is connected and not used by another app, or set "
                "video.camera (see `ravasd devices`); video.source: demo runs without one.",
            )
        self.cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self.cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self.cap.set(cv2.CAP_PROP_FPS, fps)
        self.fps = self.cap.get(cv2.CAP_PROP_FPS) or fps
        self.size = (int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self._n = 0
        self.camera = camera
        self._close_lock = threading.Lock()

    def read(self) -> RawFrame:
        ok, bgr = self.cap.read()
        if not ok:
            raise DeviceError(f"Camera {self.camera!r} stopped delivering frames.")
        self._n += 1
        return RawFrame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), now(), self._n)

    def close(self) -> None:
        """Idempotent, any thread (the runner's stop() and its capture thread may both close)."""
        with self._close_lock:
            self.cap.release()


class DemoVideoSource:
    """A synthetic, paced clip of a drawn face that turns, nods, blinks and talks.

    Used when no camera exists so the daemon runs anywhere; deterministic in ``index``.
    """

    def __init__(self, width: int = 640, height: int = 480, fps: float = 30.0) -> None:
        self.size = (width, height)
        self.fps = fps
        self._pacer = Pacer(1.0 / fps)
        self._n = 0

    @staticmethod
    def render(index: int, width: int, height: int, fps: float) -> np.ndarray:
        t = index / fps
        img = np.full((height, width, 3), (90, 120, 110), np.uint8)
        s = min(width, height)
        cx = int(width / 2 + s * 0.12 * math.sin(t * 0.9))
        cy = int(height / 2 + s * 0.05 * math.sin(t * 1.7))
        cv2.ellipse(img, (cx, cy), (int(s * 0.2), int(s * 0.27)), 0, 0, 360, (224, 172, 140), -1, cv2.LINE_AA)
        eye_h = 1 if (index % int(fps * 3)) < 3 else max(2, int(s * 0.025))
        for dx in (-1, 1):
            cv2.ellipse(
                img,
                (cx + dx * int(s * 0.08), cy - int(s * 0.06)),
                (int(s * 0.03), eye_h),
                0,
                0,
                360,
                (40, 30, 30),
                -1,
                cv2.LINE_AA,
            )
        mouth = max(1, int(s * 0.04 * (0.5 + 0.5 * math.sin(t * 9.0))))
        cv2.ellipse(img, (cx, cy + int(s * 0.13)), (int(s * 0.07), mouth), 0, 0, 360, (120, 40, 50), -1, cv2.LINE_AA)
        return img

    def read(self) -> RawFrame:
        ts = self._pacer.wait(self._n)
        img = self.render(self._n, self.size[0], self.size[1], self.fps)
        self._n += 1
        return RawFrame(img, ts, self._n)

    def close(self) -> None:
        pass


class FileVideoSource:
    """Plays the video stream of a media file in real time (looping if ``loop``)."""

    def __init__(self, path: str | Path, loop: bool = True) -> None:
        self.path = Path(path)
        info = probe(self.path)
        if not info.has_video:
            raise DeviceError(
                f"Input file {self.path} has no video stream.",
                "use a video file for files.input, or set video.source: demo.",
            )
        self.fps = info.fps or 25.0
        self.size = (info.width, info.height)
        self.loop = loop
        self._pacer = Pacer(1.0 / self.fps)
        self._n = 0
        self._it = self._frames()

    def _frames(self):
        while True:
            yield from iter_media(self.path, 16000, audio=False)
            if not self.loop:
                return

    def read(self) -> RawFrame | None:
        item = next(self._it, None)
        if item is None:
            return None
        ts = self._pacer.wait(self._n)
        self._n += 1
        return RawFrame(item.image, ts, self._n)

    def close(self) -> None:
        self._it.close()
